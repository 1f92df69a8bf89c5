// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// Protocol parameters: the fee split of an inference (model owner / data contributors /
/// node / protocol, in basis points), the attribution epoch length and the minimum
/// contribution stake. Only the governance owner changes them, and only through a timelock:
/// a proposal becomes executable DELAY seconds after it is made.
contract GovernanceParams {
    uint256 public constant DELAY = 2 days;
    uint16 public constant BPS = 10_000;

    address public owner;
    uint16 public modelOwnerBps;
    uint16 public contributorsBps;
    uint16 public nodeBps;
    uint16 public protocolBps;
    uint64 public epochLength;
    uint256 public minStake;

    struct Proposal {
        uint16 modelOwnerBps;
        uint16 contributorsBps;
        uint16 nodeBps;
        uint16 protocolBps;
        uint64 epochLength;
        uint256 minStake;
        uint256 eta;
    }

    Proposal public pending;

    event Proposed(uint16 modelOwnerBps, uint16 contributorsBps, uint16 nodeBps, uint16 protocolBps, uint64 epochLength, uint256 minStake, uint256 eta);
    event Executed(uint16 modelOwnerBps, uint16 contributorsBps, uint16 nodeBps, uint16 protocolBps, uint64 epochLength, uint256 minStake);
    event Cancelled();
    event OwnershipTransferred(address indexed from, address indexed to);

    error NotOwner();
    error BadSplit();
    error ZeroEpoch();
    error NothingPending();
    error TooEarly(uint256 eta);
    error ZeroAddress();

    constructor(address owner_, uint16[4] memory split, uint64 epochLength_, uint256 minStake_) {
        if (owner_ == address(0)) revert ZeroAddress();
        _check(split, epochLength_);
        owner = owner_;
        (modelOwnerBps, contributorsBps, nodeBps, protocolBps) = (split[0], split[1], split[2], split[3]);
        epochLength = epochLength_;
        minStake = minStake_;
    }

    modifier onlyOwner() {
        if (msg.sender != owner) revert NotOwner();
        _;
    }

    function _check(uint16[4] memory s, uint64 epoch) private pure {
        if (uint256(s[0]) + s[1] + s[2] + s[3] != BPS) revert BadSplit();
        if (epoch == 0) revert ZeroEpoch();
    }

    /// Propose new parameters; they can be executed after DELAY.
    function propose(uint16[4] calldata split, uint64 epochLength_, uint256 minStake_) external onlyOwner {
        _check(split, epochLength_);
        uint256 eta = block.timestamp + DELAY;
        pending = Proposal(split[0], split[1], split[2], split[3], epochLength_, minStake_, eta);
        emit Proposed(split[0], split[1], split[2], split[3], epochLength_, minStake_, eta);
    }

    /// Apply the pending proposal once its delay has passed (anyone may call).
    function execute() external {
        Proposal memory p = pending;
        if (p.eta == 0) revert NothingPending();
        if (block.timestamp < p.eta) revert TooEarly(p.eta);
        (modelOwnerBps, contributorsBps, nodeBps, protocolBps) = (p.modelOwnerBps, p.contributorsBps, p.nodeBps, p.protocolBps);
        epochLength = p.epochLength;
        minStake = p.minStake;
        delete pending;
        emit Executed(p.modelOwnerBps, p.contributorsBps, p.nodeBps, p.protocolBps, p.epochLength, p.minStake);
    }

    /// Drop the pending proposal.
    function cancel() external onlyOwner {
        if (pending.eta == 0) revert NothingPending();
        delete pending;
        emit Cancelled();
    }

    function transferOwnership(address to) external onlyOwner {
        if (to == address(0)) revert ZeroAddress();
        emit OwnershipTransferred(owner, to);
        owner = to;
    }
}
