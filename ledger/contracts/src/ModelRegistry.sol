// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// Model assets: adapters with their owner, base model, adapter hash, the datanet versions
/// they were trained on, and a price per 1,000 tokens; new versions and transfers.
contract ModelRegistry {
    struct DatanetVersion {
        uint256 datanetId;
        uint64 version;
    }

    struct Model {
        address owner;
        string baseModel;
        uint256 pricePer1kTokens;
        uint64 latestVersion;
    }

    uint256 public modelCount;
    mapping(uint256 => Model) public models;
    /// (model, version) => adapter hash.
    mapping(uint256 => mapping(uint64 => bytes32)) public adapterHash;
    mapping(uint256 => mapping(uint64 => DatanetVersion[])) internal trainedOn;

    event ModelRegistered(uint256 indexed id, address indexed owner, string baseModel, bytes32 adapterHash, uint256 pricePer1kTokens);
    event ModelVersionAdded(uint256 indexed id, uint64 indexed version, bytes32 adapterHash);
    event PriceChanged(uint256 indexed id, uint256 pricePer1kTokens);
    event ModelTransferred(uint256 indexed id, address indexed from, address indexed to);

    error UnknownModel(uint256 id);
    error NotOwner(uint256 id);
    error EmptyAdapter();
    error ZeroAddress();

    function register(string calldata baseModel, bytes32 adapter, DatanetVersion[] calldata datanets, uint256 pricePer1kTokens)
        external
        returns (uint256 id)
    {
        if (adapter == bytes32(0)) revert EmptyAdapter();
        id = ++modelCount;
        models[id] = Model(msg.sender, baseModel, pricePer1kTokens, 1);
        _version(id, 1, adapter, datanets);
        emit ModelRegistered(id, msg.sender, baseModel, adapter, pricePer1kTokens);
    }

    function _version(uint256 id, uint64 v, bytes32 adapter, DatanetVersion[] calldata datanets) private {
        adapterHash[id][v] = adapter;
        for (uint256 i = 0; i < datanets.length; i++) {
            trainedOn[id][v].push(datanets[i]);
        }
        emit ModelVersionAdded(id, v, adapter);
    }

    function _owned(uint256 id) private view returns (Model storage m) {
        m = models[id];
        if (m.owner == address(0)) revert UnknownModel(id);
        if (m.owner != msg.sender) revert NotOwner(id);
    }

    function addVersion(uint256 id, bytes32 adapter, DatanetVersion[] calldata datanets) external returns (uint64 v) {
        Model storage m = _owned(id);
        if (adapter == bytes32(0)) revert EmptyAdapter();
        v = ++m.latestVersion;
        _version(id, v, adapter, datanets);
    }

    function setPrice(uint256 id, uint256 pricePer1kTokens) external {
        _owned(id).pricePer1kTokens = pricePer1kTokens;
        emit PriceChanged(id, pricePer1kTokens);
    }

    function transferOwnership(uint256 id, address to) external {
        Model storage m = _owned(id);
        if (to == address(0)) revert ZeroAddress();
        m.owner = to;
        emit ModelTransferred(id, msg.sender, to);
    }

    function datanetsOf(uint256 id, uint64 v) external view returns (DatanetVersion[] memory) {
        return trainedOn[id][v];
    }
}
