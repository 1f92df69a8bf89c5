// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/// The L1 attributes of the current L2 block, written by tx 0 of every block (the
/// L1-attributes deposit). The storage layout is OP's: op-revm reads the fee parameters from
/// these slots (1, 3, 7, 8) to price the L1 data and operator fees, so the order and packing
/// of the variables below must not change.
contract L1Block {
    /// The only sender of the L1-attributes deposit.
    address public constant DEPOSITOR_ACCOUNT = 0xDeaDDEaDDeAdDeAdDEAdDEaddeAddEAdDEAd0001;
    /// Length of the `setL1BlockValuesJovian` calldata: selector and the packed fields.
    uint256 internal constant JOVIAN_CALLDATA = 178;

    uint64 public number; // slot 0
    uint64 public timestamp; // slot 0
    uint256 public basefee; // slot 1
    bytes32 public hash; // slot 2
    uint64 public sequenceNumber; // slot 3
    uint32 public blobBaseFeeScalar; // slot 3
    uint32 public baseFeeScalar; // slot 3
    bytes32 public batcherHash; // slot 4
    uint256 public l1FeeOverhead; // slot 5, unused since Ecotone; kept for the layout
    uint256 public l1FeeScalar; // slot 6, unused since Ecotone; kept for the layout
    uint256 public blobBaseFee; // slot 7
    uint64 public operatorFeeConstant; // slot 8
    uint32 public operatorFeeScalar; // slot 8
    uint16 public daFootprintGasScalar; // slot 8

    error NotDepositor();
    error BadCalldata(uint256 length);

    /// The L1 attributes, packed without ABI padding (OP's Jovian layout): base fee scalar
    /// u32, blob base fee scalar u32, sequence number u64, L1 timestamp u64, L1 number u64,
    /// L1 base fee u256, blob base fee u256, L1 hash, batcher hash, operator fee scalar u32,
    /// operator fee constant u64, DA footprint gas scalar u16.
    function setL1BlockValuesJovian() external {
        if (msg.sender != DEPOSITOR_ACCOUNT) revert NotDepositor();
        if (msg.data.length != JOVIAN_CALLDATA) revert BadCalldata(msg.data.length);
        bytes calldata d = msg.data;
        baseFeeScalar = uint32(bytes4(d[4:8]));
        blobBaseFeeScalar = uint32(bytes4(d[8:12]));
        sequenceNumber = uint64(bytes8(d[12:20]));
        timestamp = uint64(bytes8(d[20:28]));
        number = uint64(bytes8(d[28:36]));
        basefee = uint256(bytes32(d[36:68]));
        blobBaseFee = uint256(bytes32(d[68:100]));
        hash = bytes32(d[100:132]);
        batcherHash = bytes32(d[132:164]);
        operatorFeeScalar = uint32(bytes4(d[164:168]));
        operatorFeeConstant = uint64(bytes8(d[168:176]));
        daFootprintGasScalar = uint16(bytes2(d[176:178]));
    }
}
