// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// Escrow for inference: an app deposits OPEN, the node (the operator) debits it per
/// inference to a payee, and the app withdraws what is left after announcing it and waiting
/// NOTICE seconds (so the node is never debiting an escrow that vanished under it).
contract InferencePayments {
    uint256 public constant NOTICE = 1 days;

    address public operator;
    mapping(address => uint256) public balanceOf;
    mapping(address => uint256) public withdrawableAt;

    event Deposited(address indexed app, uint256 amount);
    event Debited(address indexed app, address indexed payee, uint256 amount, bytes32 indexed inference);
    event WithdrawalAnnounced(address indexed app, uint256 time);
    event Withdrawn(address indexed app, uint256 amount);

    error NotOperator();
    error ZeroAmount();
    error InsufficientEscrow(uint256 balance, uint256 needed);
    error NotAnnounced();
    error TooEarly(uint256 time);
    error TransferFailed();
    error ZeroAddress();

    constructor(address operator_) {
        if (operator_ == address(0)) revert ZeroAddress();
        operator = operator_;
    }

    function deposit() external payable {
        if (msg.value == 0) revert ZeroAmount();
        balanceOf[msg.sender] += msg.value;
        // A new deposit cancels a pending withdrawal: the app is using the escrow again.
        withdrawableAt[msg.sender] = 0;
        emit Deposited(msg.sender, msg.value);
    }

    /// Debit `app` for one inference and pay `payee`.
    function debit(address app, address payee, uint256 amount, bytes32 inference) external {
        if (msg.sender != operator) revert NotOperator();
        if (amount == 0) revert ZeroAmount();
        uint256 b = balanceOf[app];
        if (b < amount) revert InsufficientEscrow(b, amount);
        balanceOf[app] = b - amount;
        (bool ok,) = payee.call{value: amount}("");
        if (!ok) revert TransferFailed();
        emit Debited(app, payee, amount, inference);
    }

    function announceWithdrawal() external {
        uint256 time = block.timestamp + NOTICE;
        withdrawableAt[msg.sender] = time;
        emit WithdrawalAnnounced(msg.sender, time);
    }

    function withdraw() external {
        uint256 time = withdrawableAt[msg.sender];
        if (time == 0) revert NotAnnounced();
        if (block.timestamp < time) revert TooEarly(time);
        uint256 amount = balanceOf[msg.sender];
        if (amount == 0) revert ZeroAmount();
        balanceOf[msg.sender] = 0;
        withdrawableAt[msg.sender] = 0;
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert TransferFailed();
        emit Withdrawn(msg.sender, amount);
    }
}
