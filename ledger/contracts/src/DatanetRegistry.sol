// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// Datanets on the ledger: who owns one, its metadata hash, and each published version's
/// Merkle root and row count. The data itself stays in the node's store; this records
/// commitments to it.
contract DatanetRegistry {
    struct Datanet {
        address owner;
        bytes32 metadataHash;
        uint64 latestVersion;
    }

    struct Version {
        bytes32 root;
        uint64 rowCount;
        uint64 publishedAt;
    }

    uint256 public datanetCount;
    mapping(uint256 => Datanet) public datanets;
    mapping(uint256 => mapping(uint64 => Version)) public versions;

    event DatanetRegistered(uint256 indexed id, address indexed owner, bytes32 metadataHash);
    event VersionPublished(uint256 indexed id, uint64 indexed number, bytes32 root, uint64 rowCount);
    event DatanetTransferred(uint256 indexed id, address indexed from, address indexed to);
    event MetadataUpdated(uint256 indexed id, bytes32 metadataHash);

    error UnknownDatanet(uint256 id);
    error NotOwner(uint256 id);
    error VersionOutOfOrder(uint64 expected, uint64 given);
    error ZeroAddress();
    error EmptyRoot();

    /// Register a datanet owned by the caller; ids start at 1.
    function register(bytes32 metadataHash) external returns (uint256 id) {
        id = ++datanetCount;
        datanets[id] = Datanet(msg.sender, metadataHash, 0);
        emit DatanetRegistered(id, msg.sender, metadataHash);
    }

    function _owned(uint256 id) private view returns (Datanet storage d) {
        d = datanets[id];
        if (d.owner == address(0)) revert UnknownDatanet(id);
        if (d.owner != msg.sender) revert NotOwner(id);
    }

    /// Publish version `number` (the previous one plus one).
    function publishVersion(uint256 id, uint64 number, bytes32 root, uint64 rowCount) external {
        Datanet storage d = _owned(id);
        if (number != d.latestVersion + 1) revert VersionOutOfOrder(d.latestVersion + 1, number);
        if (root == bytes32(0)) revert EmptyRoot();
        d.latestVersion = number;
        versions[id][number] = Version(root, rowCount, uint64(block.timestamp));
        emit VersionPublished(id, number, root, rowCount);
    }

    function setMetadata(uint256 id, bytes32 metadataHash) external {
        _owned(id).metadataHash = metadataHash;
        emit MetadataUpdated(id, metadataHash);
    }

    function transferOwnership(uint256 id, address to) external {
        Datanet storage d = _owned(id);
        if (to == address(0)) revert ZeroAddress();
        d.owner = to;
        emit DatanetTransferred(id, msg.sender, to);
    }

    function ownerOf(uint256 id) external view returns (address) {
        return datanets[id].owner;
    }
}
