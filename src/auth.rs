//! Who may act: EIP-712 typed data for every signed write, signature checks, development keys
//! and custodial signing.

use alloy_primitives::{Address, B256, Signature, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English};
use alloy_sol_types::{Eip712Domain, SolStruct, eip712_domain, sol};
use commons_storage::model::SignedBy;

/// The mnemonic the Ethereum dev tools (Hardhat, Anvil) use for their well-known accounts.
/// Never hold real value with these keys.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// Number of development accounts (`dev0` … `dev9`).
pub const DEV_ACCOUNTS: u32 = 10;

sol! {
    /// Create a datanet; the signer becomes its owner.
    #[derive(Debug)]
    struct CreateDatanet {
        string slug;
        string name;
        string summary;
        bytes32 descriptionHash;
        string[] tags;
        string kind;
        bool isPrivate;
        uint256 nonce;
        uint256 deadline;
    }

    /// Edit a datanet's metadata (owner).
    #[derive(Debug)]
    struct EditDatanet {
        string datanet;
        string summary;
        bytes32 descriptionHash;
        string[] tags;
        uint256 nonce;
        uint256 deadline;
    }

    /// Set reviewers and private contributors (owner).
    #[derive(Debug)]
    struct SetRoles {
        string datanet;
        address[] reviewers;
        address[] contributors;
        uint256 nonce;
        uint256 deadline;
    }

    /// Upload one file to a datanet.
    #[derive(Debug)]
    struct Contribute {
        string datanet;
        bytes32 fileHash;
        string fileName;
        uint256 nonce;
        uint256 deadline;
    }

    /// Accept or reject pending contributions (owner or reviewer).
    #[derive(Debug)]
    struct Review {
        string datanet;
        uint256[] contributions;
        bool accept;
        string reason;
        uint256 nonce;
        uint256 deadline;
    }

    /// Take rows down in a new version (owner or reviewer).
    #[derive(Debug)]
    struct TakeDown {
        string datanet;
        uint256[] rows;
        string reason;
        uint256 nonce;
        uint256 deadline;
    }
}

/// The primary types a custodial account will sign; anything else is refused.
pub const PRIMARY_TYPES: &[&str] = &[
    "CreateDatanet",
    "EditDatanet",
    "SetRoles",
    "Contribute",
    "Review",
    "TakeDown",
];

/// Why a signature was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Missing, malformed or unrecoverable signature.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// It recovers to someone else.
    #[error("the signature was made by {recovered}, not by the claimed signer {claimed}")]
    SignerMismatch {
        /// Who the request claims signed.
        claimed: Address,
        /// Who did.
        recovered: Address,
    },
    /// Past its deadline.
    #[error("the signature expired at {deadline} (unix seconds); it is now {now}")]
    Expired {
        /// The signed deadline.
        deadline: u64,
        /// The node's clock.
        now: u64,
    },
}

/// The EIP-712 domain of this node's signed requests.
pub fn domain(chain_id: u64) -> Eip712Domain {
    eip712_domain! {
        name: "Commons",
        version: "1",
        chain_id: chain_id,
    }
}

/// The signature fields every signed request carries.
#[derive(Debug, Clone)]
pub struct Auth {
    /// Claimed signer.
    pub signer: Address,
    /// Nonce.
    pub nonce: U256,
    /// Deadline, unix seconds.
    pub deadline: u64,
    /// 65-byte signature.
    pub signature: Vec<u8>,
}

/// Check that `auth` signs `msg` under `domain`; on success the evidence to store.
pub fn verify<T: SolStruct>(
    msg: &T,
    domain: &Eip712Domain,
    auth: &Auth,
    now_s: u64,
) -> Result<SignedBy, AuthError> {
    if auth.deadline < now_s {
        return Err(AuthError::Expired {
            deadline: auth.deadline,
            now: now_s,
        });
    }
    let hash = msg.eip712_signing_hash(domain);
    let recovered = recover(&hash, &auth.signature)?;
    if recovered != auth.signer {
        return Err(AuthError::SignerMismatch {
            claimed: auth.signer,
            recovered,
        });
    }
    Ok(SignedBy {
        signer: auth.signer.into_array(),
        nonce: auth.nonce.to_be_bytes(),
        deadline: auth.deadline,
        signature: auth.signature.clone(),
    })
}

/// Recover the address that signed a 32-byte hash.
///
/// Recovery runs in libsecp256k1 (the `secp256k1` crate): on every upload it is the node's
/// largest CPU cost, and the pure-Rust `k256` path measured ~4× slower. The signature is
/// parsed by alloy (`v` as 0/1 or 27/28) and its `s` normalized to the low half first, as
/// alloy's own recovery does, so both accept the same signatures.
pub fn recover(hash: &B256, signature: &[u8]) -> Result<Address, AuthError> {
    use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
    if signature.len() != 65 {
        return Err(AuthError::BadSignature(format!(
            "expected 65 bytes, got {}",
            signature.len()
        )));
    }
    let sig = Signature::try_from(signature).map_err(|e| AuthError::BadSignature(e.to_string()))?;
    let sig = sig.normalized_s();
    let mut compact = [0u8; 64];
    compact[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
    compact[32..].copy_from_slice(&sig.s().to_be_bytes::<32>());
    let bad = |e: secp256k1::Error| AuthError::BadSignature(e.to_string());
    let recid = RecoveryId::try_from(i32::from(sig.v())).map_err(bad)?;
    let rsig = RecoverableSignature::from_compact(&compact, recid).map_err(bad)?;
    let msg = secp256k1::Message::from_digest(hash.0);
    let key = secp256k1::SECP256K1
        .recover_ecdsa(msg, &rsig)
        .map_err(bad)?;
    let uncompressed = key.serialize_uncompressed();
    Ok(Address::from_raw_public_key(&uncompressed[1..]))
}

/// Sign `msg` with `key`, as a client does.
pub fn sign<T: SolStruct>(
    msg: &T,
    domain: &Eip712Domain,
    key: &PrivateKeySigner,
) -> Result<Vec<u8>, alloy_signer::Error> {
    let hash = msg.eip712_signing_hash(domain);
    Ok(key.sign_hash_sync(&hash)?.as_bytes().to_vec())
}

/// Development account `i` of [`DEV_MNEMONIC`] (m/44'/60'/0'/0/i).
pub fn dev_key(i: u32) -> Result<PrivateKeySigner, String> {
    MnemonicBuilder::<English>::default()
        .phrase(DEV_MNEMONIC)
        .index(i)
        .map_err(|e| e.to_string())?
        .build()
        .map_err(|e| e.to_string())
}

/// Parse `--key`: `dev0`…`dev9`, a 0x-hex private key, or a path to an Ethereum keystore
/// file (then `password` decrypts it).
pub fn parse_key(spec: &str, password: Option<&str>) -> Result<PrivateKeySigner, String> {
    if let Some(n) = spec.strip_prefix("dev") {
        let i: u32 = n
            .parse()
            .map_err(|_| format!("unknown dev key '{spec}': use dev0 … dev9"))?;
        if i >= DEV_ACCOUNTS {
            return Err(format!("unknown dev key '{spec}': use dev0 … dev9"));
        }
        return dev_key(i);
    }
    let hexstr = spec.strip_prefix("0x").unwrap_or(spec);
    if hexstr.len() == 64 && hexstr.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hexstr
            .parse::<PrivateKeySigner>()
            .map_err(|e| format!("invalid private key: {e}"));
    }
    let path = std::path::Path::new(spec);
    if path.is_file() {
        let password = password.ok_or_else(|| {
            "the key is a keystore file: give its password with --key-password or COMMONS_KEY_PASSWORD"
                .to_string()
        })?;
        return PrivateKeySigner::decrypt_keystore(path, password)
            .map_err(|e| format!("cannot decrypt keystore {spec}: {e}"));
    }
    Err(format!(
        "--key '{spec}' is neither dev0…dev9, a 64-hex-digit private key, nor a keystore file"
    ))
}

/// Hash of a typed-data JSON document (as `eth_signTypedData_v4` takes it), after checking it
/// is one of ours: the node's domain and one of [`PRIMARY_TYPES`].
pub fn typed_data_hash(json: &serde_json::Value, chain_id: u64) -> Result<B256, String> {
    let td: alloy_dyn_abi::TypedData =
        serde_json::from_value(json.clone()).map_err(|e| format!("not EIP-712 typed data: {e}"))?;
    if !PRIMARY_TYPES.contains(&td.primary_type.as_str()) {
        return Err(format!(
            "this account signs only Commons requests ({}), not '{}'",
            PRIMARY_TYPES.join(", "),
            td.primary_type
        ));
    }
    if td.domain != domain(chain_id) {
        return Err(format!(
            "the typed data's domain is not this node's (name Commons, version 1, chainId {chain_id})"
        ));
    }
    td.eip712_signing_hash().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contribute() -> Contribute {
        Contribute {
            datanet: "med".into(),
            fileHash: B256::repeat_byte(7),
            fileName: "a.txt".into(),
            nonce: U256::from(42),
            deadline: U256::from(4_000_000_000u64),
        }
    }

    /// libsecp256k1 recovery agrees with alloy's own (k256) on every encoding of `v` and on
    /// high-`s` twins, and refuses what alloy refuses.
    #[test]
    fn recovery_agrees_with_alloy() {
        use alloy_signer::SignerSync;
        for i in 0..64u64 {
            let key = PrivateKeySigner::random();
            let hash = alloy_primitives::keccak256(i.to_be_bytes());
            let sig = key.sign_hash_sync(&hash).expect("sign");
            let want = sig
                .recover_address_from_prehash(&hash)
                .expect("alloy recovers");
            assert_eq!(want, key.address());
            let mut bytes = sig.as_bytes();
            assert_eq!(recover(&hash, &bytes).expect("27/28"), want);
            bytes[64] -= 27;
            assert_eq!(recover(&hash, &bytes).expect("0/1"), want);
            // The high-s twin with the other parity is the same signature.
            let n = U256::from_str_radix(
                "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
                16,
            )
            .expect("the group order");
            let high = Signature::new(sig.r(), n - sig.s(), !sig.v());
            assert_eq!(
                recover(&hash, &high.as_bytes()).expect("high s"),
                high.recover_address_from_prehash(&hash)
                    .expect("alloy high s")
            );
        }
        let hash = B256::repeat_byte(1);
        let mut zero_r = [0u8; 65];
        zero_r[63] = 1;
        zero_r[64] = 27;
        assert!(recover(&hash, &zero_r).is_err());
        assert!(recover(&hash, &[0u8; 64]).is_err());
    }

    #[test]
    fn dev_keys_are_the_well_known_ones() {
        let k = dev_key(0).expect("dev0");
        assert_eq!(
            format!("{:?}", k.address()).to_lowercase(),
            "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266"
        );
        assert!(parse_key("dev10", None).is_err());
        assert_eq!(
            parse_key("dev1", None).expect("dev1").address(),
            dev_key(1).expect("dev1").address()
        );
    }

    #[test]
    fn sign_then_verify_and_reject_others() {
        let d = domain(1612);
        let k = dev_key(0).expect("key");
        let msg = contribute();
        let sig = sign(&msg, &d, &k).expect("sign");
        let auth = Auth {
            signer: k.address(),
            nonce: U256::from(42),
            deadline: 4_000_000_000,
            signature: sig.clone(),
        };
        let s = verify(&msg, &d, &auth, 1).expect("valid");
        assert_eq!(s.signer, k.address().into_array());
        // another claimed signer
        let other = Auth {
            signer: dev_key(1).expect("k").address(),
            ..auth.clone()
        };
        assert!(matches!(
            verify(&msg, &d, &other, 1),
            Err(AuthError::SignerMismatch { .. })
        ));
        // altered message
        let mut m2 = contribute();
        m2.fileName = "b.txt".into();
        assert!(verify(&m2, &d, &auth, 1).is_err());
        // expired
        assert!(matches!(
            verify(&msg, &d, &auth, 4_000_000_001),
            Err(AuthError::Expired { .. })
        ));
        // garbage
        let bad = Auth {
            signature: vec![1, 2, 3],
            ..auth
        };
        assert!(matches!(
            verify(&msg, &d, &bad, 1),
            Err(AuthError::BadSignature(_))
        ));
    }

    /// The JSON typed data the console builds hashes exactly as the Rust struct does.
    #[test]
    fn json_typed_data_matches_struct_hash() {
        let json = serde_json::json!({
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"}
                ],
                "Contribute": [
                    {"name": "datanet", "type": "string"},
                    {"name": "fileHash", "type": "bytes32"},
                    {"name": "fileName", "type": "string"},
                    {"name": "nonce", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"}
                ]
            },
            "primaryType": "Contribute",
            "domain": {"name": "Commons", "version": "1", "chainId": 1612},
            "message": {
                "datanet": "med",
                "fileHash": format!("{}", B256::repeat_byte(7)),
                "fileName": "a.txt",
                "nonce": "42",
                "deadline": "4000000000"
            }
        });
        let h = typed_data_hash(&json, 1612).expect("hash");
        assert_eq!(h, contribute().eip712_signing_hash(&domain(1612)));
        assert!(typed_data_hash(&json, 1).is_err(), "other chain id");
        let mut other = json.clone();
        other["primaryType"] = "Mail".into();
        assert!(typed_data_hash(&other, 1612).is_err());
    }
}
