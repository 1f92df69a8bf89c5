// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// Attribution rewards: each epoch the node posts the Merkle root of every address's
/// cumulative reward; anyone claims for an account with a proof and is paid the difference
/// to what the account was paid before, so a claim can never pay twice. Leaves are
/// keccak256(abi.encode(account, cumulativeAmount)); pairs are hashed sorted.
contract AttributionRewards {
    address public poster;
    bytes32 public root;
    uint64 public epoch;
    mapping(address => uint256) public claimed;

    event RootPosted(uint64 indexed epoch, bytes32 root);
    event Claimed(address indexed account, uint256 amount, uint256 cumulative);
    event Funded(address indexed from, uint256 amount);

    error NotPoster();
    error EpochNotNewer(uint64 current, uint64 given);
    error InvalidProof();
    error NothingToClaim();
    error TransferFailed();
    error ZeroAddress();

    constructor(address poster_) {
        if (poster_ == address(0)) revert ZeroAddress();
        poster = poster_;
    }

    receive() external payable {
        emit Funded(msg.sender, msg.value);
    }

    function postRoot(uint64 epoch_, bytes32 root_) external {
        if (msg.sender != poster) revert NotPoster();
        if (epoch_ <= epoch) revert EpochNotNewer(epoch, epoch_);
        epoch = epoch_;
        root = root_;
        emit RootPosted(epoch_, root_);
    }

    function claim(address account, uint256 cumulativeAmount, bytes32[] calldata proof) external {
        bytes32 node = keccak256(abi.encode(account, cumulativeAmount));
        for (uint256 i = 0; i < proof.length; i++) {
            bytes32 p = proof[i];
            node = node < p ? keccak256(abi.encodePacked(node, p)) : keccak256(abi.encodePacked(p, node));
        }
        if (node != root) revert InvalidProof();
        uint256 already = claimed[account];
        if (cumulativeAmount <= already) revert NothingToClaim();
        uint256 amount = cumulativeAmount - already;
        claimed[account] = cumulativeAmount;
        (bool ok,) = account.call{value: amount}("");
        if (!ok) revert TransferFailed();
        emit Claimed(account, amount, cumulativeAmount);
    }
}
