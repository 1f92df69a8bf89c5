// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// Stakes on contributions: a contributor stakes OPEN on a contribution; the node's reviewer
/// (the owner of this contract) releases it back or slashes it to the datanet's treasury.
contract ContributionStaking {
    enum State {
        None,
        Staked,
        Released,
        Slashed
    }

    struct Stake {
        address staker;
        uint96 amount;
        State state;
        address treasury;
    }

    address public reviewer;
    mapping(bytes32 => Stake) public stakes;

    event Staked(bytes32 indexed contribution, address indexed staker, uint256 amount, address treasury);
    event Released(bytes32 indexed contribution, address indexed staker, uint256 amount);
    event Slashed(bytes32 indexed contribution, address indexed treasury, uint256 amount);
    event ReviewerChanged(address indexed from, address indexed to);

    error NotReviewer();
    error AlreadyStaked(bytes32 contribution);
    error NotStaked(bytes32 contribution);
    error ZeroAmount();
    error ZeroAddress();
    error TransferFailed();

    constructor(address reviewer_) {
        if (reviewer_ == address(0)) revert ZeroAddress();
        reviewer = reviewer_;
    }

    modifier onlyReviewer() {
        if (msg.sender != reviewer) revert NotReviewer();
        _;
    }

    /// Stake the OPEN sent on `contribution`; a slash pays `treasury`.
    function stake(bytes32 contribution, address treasury) external payable {
        if (msg.value == 0 || msg.value > type(uint96).max) revert ZeroAmount();
        if (treasury == address(0)) revert ZeroAddress();
        if (stakes[contribution].state != State.None) revert AlreadyStaked(contribution);
        stakes[contribution] = Stake(msg.sender, uint96(msg.value), State.Staked, treasury);
        emit Staked(contribution, msg.sender, msg.value, treasury);
    }

    function release(bytes32 contribution) external onlyReviewer {
        Stake storage s = stakes[contribution];
        if (s.state != State.Staked) revert NotStaked(contribution);
        s.state = State.Released;
        _pay(s.staker, s.amount);
        emit Released(contribution, s.staker, s.amount);
    }

    function slash(bytes32 contribution) external onlyReviewer {
        Stake storage s = stakes[contribution];
        if (s.state != State.Staked) revert NotStaked(contribution);
        s.state = State.Slashed;
        _pay(s.treasury, s.amount);
        emit Slashed(contribution, s.treasury, s.amount);
    }

    function setReviewer(address to) external onlyReviewer {
        if (to == address(0)) revert ZeroAddress();
        emit ReviewerChanged(reviewer, to);
        reviewer = to;
    }

    function _pay(address to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed();
    }
}
