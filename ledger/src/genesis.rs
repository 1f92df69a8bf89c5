//! Genesis: the chain's parameters and its first state — the OPEN allocation, dev accounts
//! and the OP predeploy addresses.

use alloy_primitives::{Address, U256, address, keccak256};
use serde::{Deserialize, Serialize};

/// One OPEN (and one ETH-style unit): 10^18 wei.
pub const OPEN: u128 = 1_000_000_000_000_000_000;
/// Total OPEN created at genesis: 1,000,000,000 OPEN.
pub const TOTAL_SUPPLY: u128 = 1_000_000_000 * OPEN;
/// Block gas limit.
pub const GAS_LIMIT: u64 = 30_000_000;
/// Base fee of the first block (1 gwei).
pub const INITIAL_BASE_FEE: u64 = 1_000_000_000;
/// The base fee never falls below this (0.001 gwei), so fees stay meaningful on a quiet chain.
pub const MIN_BASE_FEE: u64 = 1_000_000;
/// The priority fee the node suggests (eth_maxPriorityFeePerGas), wei.
pub const SUGGESTED_TIP: u128 = 1_000_000;
/// OPEN given to each dev account in `--dev`, taken from the ecosystem share.
pub const DEV_ACCOUNT_OPEN: u128 = 1_000_000 * OPEN;

/// The L1Block predeploy: tx 0 of every block writes the L1 attributes to it.
pub const L1_BLOCK: Address = address!("0x4200000000000000000000000000000000000015");
/// L2ToL1MessagePasser: withdrawals; its storage root goes into output roots.
pub const L2_TO_L1_MESSAGE_PASSER: Address = address!("0x4200000000000000000000000000000000000016");
/// SequencerFeeVault: priority fees (the block's beneficiary).
pub const SEQUENCER_FEE_VAULT: Address = address!("0x4200000000000000000000000000000000000011");
/// BaseFeeVault: base fees (not burned, so the supply is conserved).
pub const BASE_FEE_VAULT: Address = address!("0x4200000000000000000000000000000000000019");
/// L1FeeVault: the L1 data fee.
pub const L1_FEE_VAULT: Address = address!("0x420000000000000000000000000000000000001A");
/// OperatorFeeVault.
pub const OPERATOR_FEE_VAULT: Address = address!("0x420000000000000000000000000000000000001B");
/// The sender of the L1-attributes deposit.
pub const L1_ATTRIBUTES_DEPOSITOR: Address = address!("0xDeaDDEaDDeAdDeAdDEAdDEaddeAddEAdDEAd0001");

/// Who receives the genesis OPEN. The defaults are addresses nobody holds a key for (derived
/// from a name); a real network sets its own in `commons.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// 51.71 %.
    pub community: Address,
    /// 18.29 %.
    pub investors: Address,
    /// 15 %.
    pub team: Address,
    /// 5 %.
    pub liquidity: Address,
    /// 10 %; the dev accounts are funded from it in `--dev`.
    pub ecosystem: Address,
}

/// A placeholder address derived from a name.
pub fn named_address(name: &str) -> Address {
    Address::from_slice(&keccak256(format!("commons.genesis.{name}"))[12..])
}

impl Default for Allocation {
    fn default() -> Self {
        Allocation {
            community: named_address("community"),
            investors: named_address("investors"),
            team: named_address("team"),
            liquidity: named_address("liquidity"),
            ecosystem: named_address("ecosystem"),
        }
    }
}

/// Everything that fixes the genesis block. Stored in the ledger database and in the DA
/// directory, so a follower derives the same chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisConfig {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Genesis timestamp, unix seconds.
    pub timestamp: u64,
    /// The OPEN allocation.
    pub allocation: Allocation,
    /// Accounts funded from the ecosystem share (the ten dev accounts in `--dev`).
    pub dev_accounts: Vec<Address>,
    /// The node operator: owner of GovernanceParams, reviewer of ContributionStaking,
    /// operator of InferencePayments, poster of AttributionRewards.
    #[serde(default = "default_operator")]
    pub operator: Address,
}

fn default_operator() -> Address {
    named_address("operator")
}

impl GenesisConfig {
    /// Balances at genesis; they sum to [`TOTAL_SUPPLY`].
    pub fn balances(&self) -> Vec<(Address, U256)> {
        // Shares in basis points of 0.01 %: 5171 + 1829 + 1500 + 500 + 1000 = 10000.
        let part = |bp: u128| U256::from(TOTAL_SUPPLY / 10_000 * bp);
        let dev_total = DEV_ACCOUNT_OPEN * self.dev_accounts.len() as u128;
        let a = &self.allocation;
        let mut out = vec![
            (a.community, part(5171)),
            (a.investors, part(1829)),
            (a.team, part(1500)),
            (a.liquidity, part(500)),
            (
                a.ecosystem,
                part(1000).saturating_sub(U256::from(dev_total)),
            ),
        ];
        out.extend(
            self.dev_accounts
                .iter()
                .map(|d| (*d, U256::from(DEV_ACCOUNT_OPEN))),
        );
        // Two shares given to one address add up. An index keeps this linear: the benchmark
        // funds a million dev accounts.
        let mut merged: Vec<(Address, U256)> = Vec::with_capacity(out.len());
        let mut at: std::collections::HashMap<Address, usize> =
            std::collections::HashMap::with_capacity(out.len());
        for (addr, v) in out {
            match at.get(&addr) {
                Some(&i) => merged[i].1 += v,
                None => {
                    at.insert(addr, merged.len());
                    merged.push((addr, v));
                }
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_sums_to_the_supply() {
        let g = GenesisConfig {
            chain_id: 1,
            timestamp: 0,
            allocation: Allocation::default(),
            dev_accounts: (0..10u8).map(|i| Address::repeat_byte(i + 1)).collect(),
            operator: Address::repeat_byte(1),
        };
        let total: U256 = g.balances().iter().map(|(_, v)| *v).sum();
        assert_eq!(total, U256::from(TOTAL_SUPPLY));
        let community = g.balances()[0].1;
        assert_eq!(community, U256::from(517_100_000u128 * OPEN));
        let eco = g.balances()[4].1;
        assert_eq!(eco, U256::from(90_000_000u128 * OPEN));
    }
}
