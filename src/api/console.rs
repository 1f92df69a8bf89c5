//! Custodial console accounts: the admin creates a user; the node keeps the user's Ethereum key
//! encrypted under a key derived from the password (Argon2id), and while a session lasts, under
//! a key derived from the session token, so it can sign for that session only.

use std::sync::Arc;

use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use commons_storage::model::{Session, User};
use serde::Deserialize;
use serde_json::json;
use warp::http::StatusCode;

use super::types::addr;
use super::{ApiError, Req, Resp, blocking};
use crate::node::Node;

const SESSION_HEADER: &str = "x-commons-session";
/// Failed logins allowed per user name within [`LOGIN_WINDOW_MS`].
const MAX_LOGIN_FAILURES: u32 = 5;
const LOGIN_WINDOW_MS: u64 = 15 * 60 * 1000;

/// Refuse a login for a user name that failed too often lately (429 with the reset time).
fn login_allowed(node: &Node, username: &str) -> Result<(), ApiError> {
    let now = commons_storage::now_ms();
    let mut map = node
        .login_failures
        .lock()
        .map_err(|_| ApiError::internal("login limiter poisoned"))?;
    map.retain(|_, (_, start)| now < *start + LOGIN_WINDOW_MS);
    match map.get(username) {
        Some((n, start)) if *n >= MAX_LOGIN_FAILURES => {
            tracing::warn!(username, "console login refused: too many failures");
            Err(ApiError {
                reset_at: Some(start + LOGIN_WINDOW_MS),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_attempts",
                    format!("{MAX_LOGIN_FAILURES} failed logins for '{username}': try again later"),
                )
            })
        }
        _ => Ok(()),
    }
}

fn login_failed(node: &Node, username: &str) {
    if let Ok(mut map) = node.login_failures.lock() {
        let e = map
            .entry(username.to_string())
            .or_insert((0, commons_storage::now_ms()));
        e.0 += 1;
    }
}

/// Refuse a caller without the node's admin token.
pub(super) fn admin(node: &Node, req: &Req) -> Result<(), ApiError> {
    let given = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or("");
    if given.is_empty() || !constant_time_eq(given.as_bytes(), node.admin_token.as_bytes()) {
        return Err(ApiError::unauthorized(
            "this call needs the admin token (Authorization: Bearer <DATA_DIR/admin.token>)",
        ));
    }
    Ok(())
}

pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn encrypt(key: &[u8; 32], plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>), ApiError> {
    let nonce: [u8; 12] = rand::random();
    let c = ChaCha20Poly1305::new(Key::from_slice(key))
        .encrypt(Nonce::from_slice(&nonce), plain)
        .map_err(|_| ApiError::internal("key encryption failed"))?;
    Ok((nonce.to_vec(), c))
}

fn decrypt(key: &[u8; 32], nonce: &[u8], cipher: &[u8]) -> Option<Vec<u8>> {
    if nonce.len() != 12 {
        return None;
    }
    ChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt(Nonce::from_slice(nonce), cipher)
        .ok()
}

fn password_key(password: &str, salt: &[u8]) -> Result<[u8; 32], ApiError> {
    let mut out = [0u8; 32];
    Argon2::default()
        .hash_password_into(password.as_bytes(), salt, &mut out)
        .map_err(|e| ApiError::internal(format!("key derivation failed: {e}")))?;
    Ok(out)
}

fn session_key(token: &[u8]) -> [u8; 32] {
    blake3::derive_key("commons console session key v1", token)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    username: String,
    password: String,
}

fn user_json(u: &User) -> serde_json::Value {
    json!({"username": u.username, "address": addr(&u.address), "custodial": true, "created_at": u.created_at})
}

pub(super) async fn create_user(node: &Arc<Node>, req: &mut Req) -> Result<Resp, ApiError> {
    admin(node, req)?;
    let c: Credentials = req.json().await?;
    let valid_name = (1..=64).contains(&c.username.len())
        && c.username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if !valid_name {
        return Err(ApiError::bad_request(
            "username: 1-64 characters a-z, A-Z, 0-9, '_', '-', '.'",
        ));
    }
    if c.password.len() < 8 {
        return Err(ApiError::bad_request("password: at least 8 characters"));
    }
    let n = node.clone();
    let user = blocking(move || {
        let key = PrivateKeySigner::random();
        let salt: [u8; 16] = rand::random();
        let kek = password_key(&c.password, &salt)?;
        let (key_nonce, encrypted_key) = encrypt(&kek, key.to_bytes().as_slice())?;
        let password_hash = Argon2::default()
            .hash_password(c.password.as_bytes(), &SaltString::generate(&mut OsRng))
            .map_err(|e| ApiError::internal(format!("password hashing failed: {e}")))?
            .to_string();
        let user = User {
            username: c.username,
            address: key.address().into_array(),
            password_hash,
            key_salt: salt.to_vec(),
            key_nonce,
            encrypted_key,
            created_at: commons_storage::now_ms(),
        };
        Ok(n.store.create_user(user)?)
    })
    .await?;
    Ok(super::json(StatusCode::CREATED, &user_json(&user)))
}

pub(super) async fn list_users(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    admin(node, req)?;
    let n = node.clone();
    let users = blocking(move || Ok(n.store.snapshot()?.users()?)).await?;
    let items: Vec<_> = users.iter().map(user_json).collect();
    Ok(super::json(StatusCode::OK, &json!({ "items": items })))
}

pub(super) async fn login(node: &Arc<Node>, req: &mut Req) -> Result<Resp, ApiError> {
    let c: Credentials = req.json().await?;
    login_allowed(node, &c.username)?;
    let n = node.clone();
    let out = blocking(move || {
        let bad = || {
            login_failed(&n, &c.username);
            ApiError::unauthorized("wrong username or password")
        };
        let user = match n.store.snapshot()?.user(&c.username) {
            Ok(u) => u,
            Err(commons_storage::Error::NotFound { .. }) => {
                tracing::warn!(username = %c.username, "console login for unknown user");
                return Err(bad());
            }
            Err(e) => return Err(e.into()),
        };
        let parsed = PasswordHash::new(&user.password_hash)
            .map_err(|_| ApiError::internal("stored password hash is malformed"))?;
        if Argon2::default()
            .verify_password(c.password.as_bytes(), &parsed)
            .is_err()
        {
            tracing::warn!(username = %c.username, "console login with a wrong password");
            return Err(bad());
        }
        let kek = password_key(&c.password, &user.key_salt)?;
        let secret = decrypt(&kek, &user.key_nonce, &user.encrypted_key)
            .ok_or_else(|| ApiError::internal("cannot decrypt the account key"))?;
        let token: [u8; 32] = rand::random();
        let (key_nonce, encrypted_key) = encrypt(&session_key(&token), &secret)?;
        let expires_at = commons_storage::now_ms() + n.config.session_hours * 3_600_000;
        n.store.put_session(
            *blake3::hash(&token).as_bytes(),
            Session {
                username: user.username.clone(),
                expires_at,
                key_nonce,
                encrypted_key,
            },
        )?;
        Ok(json!({
            "token": hex::encode(token),
            "username": user.username,
            "address": addr(&user.address),
            "expires_at": expires_at,
        }))
    })
    .await?;
    Ok(super::json(StatusCode::OK, &out))
}

/// The user name of a valid console session on the request, if any.
pub(super) fn session_user(node: &Node, req: &Req) -> Option<String> {
    req.header(SESSION_HEADER)?;
    session(node, req).ok().map(|(s, _)| s.username)
}

/// The session of the request and its token bytes.
fn session(node: &Node, req: &Req) -> Result<(Session, Vec<u8>), ApiError> {
    let token = req
        .header(SESSION_HEADER)
        .and_then(|t| hex::decode(t).ok())
        .ok_or_else(|| ApiError::unauthorized("sign in first (X-Commons-Session)"))?;
    let s = node
        .store
        .snapshot()?
        .session(blake3::hash(&token).as_bytes(), commons_storage::now_ms())?
        .ok_or_else(|| {
            ApiError::unauthorized("the session expired or does not exist; sign in again")
        })?;
    Ok((s, token))
}

pub(super) async fn logout(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    let token = req
        .header(SESSION_HEADER)
        .and_then(|t| hex::decode(t).ok())
        .ok_or_else(|| ApiError::unauthorized("no session"))?;
    let n = node.clone();
    blocking(move || Ok(n.store.delete_session(*blake3::hash(&token).as_bytes())?)).await?;
    Ok(super::respond(
        StatusCode::NO_CONTENT,
        "application/json",
        "",
    ))
}

pub(super) async fn me(node: &Arc<Node>, req: &Req) -> Result<Resp, ApiError> {
    let (s, _) = session(node, req)?;
    let n = node.clone();
    let u = blocking(move || Ok(n.store.snapshot()?.user(&s.username)?)).await?;
    Ok(super::json(StatusCode::OK, &user_json(&u)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignBody {
    typed_data: serde_json::Value,
}

pub(super) async fn sign(node: &Arc<Node>, req: &mut Req) -> Result<Resp, ApiError> {
    let (s, token) = session(node, req)?;
    let b: SignBody = req.json().await?;
    let hash = crate::auth::typed_data_hash(&b.typed_data, node.config.chain_id)
        .map_err(ApiError::bad_request)?;
    let secret = decrypt(&session_key(&token), &s.key_nonce, &s.encrypted_key)
        .ok_or_else(|| ApiError::internal("cannot decrypt the session key"))?;
    let key = PrivateKeySigner::from_slice(&secret)
        .map_err(|e| ApiError::internal(format!("stored key is invalid: {e}")))?;
    let sig = key
        .sign_hash_sync(&hash)
        .map_err(|e| ApiError::internal(format!("signing failed: {e}")))?;
    Ok(super::json(
        StatusCode::OK,
        &json!({"signer": format!("{:#x}", key.address()), "signature": format!("0x{}", hex::encode(sig.as_bytes()))}),
    ))
}
