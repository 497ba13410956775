//! Plan signatures (issue 18.6). The plan id is a SHA-256 of the canonical body: it detects
//! an edit made by mistake, but anyone can recompute it after adding a statement or deleting
//! a blocking finding. A signature is an HMAC-SHA256 of the same canonical bytes under a key
//! that only CI holds: `seqmig plan --sign-key-file` writes it, and `apply`/`rollback` with
//! `--verify-key-file` refuse a plan whose signature is missing or does not verify.
//!
//! A key file holds the key's bytes; surrounding whitespace is ignored (`openssl rand -hex 32
//! > key` works as written), and a key shorter than [`MIN_KEY_BYTES`] is refused.

use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::Plan;

/// What a signature starts with; the algorithm is named so that another can follow.
pub const SIGNATURE_PREFIX: &str = "hmac-sha256:";

/// The shortest key accepted: 128 bits.
pub const MIN_KEY_BYTES: usize = 16;

/// The environment variable naming the key file `seqmig plan` signs with.
pub const SIGN_KEY_ENV: &str = "SEQMIG_SIGNING_KEY_FILE";

/// The environment variable naming the key file `apply` and `rollback` verify with.
pub const VERIFY_KEY_ENV: &str = "SEQMIG_VERIFY_KEY_FILE";

/// A key read from a file. Its bytes are never printed (`Debug` shows the file only).
#[derive(Clone)]
pub struct PlanKey {
    bytes: Vec<u8>,
    file: String,
}

impl std::fmt::Debug for PlanKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlanKey").field("file", &self.file).finish_non_exhaustive()
    }
}

/// Why a plan's signature was refused, or a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    #[error("key file '{file}': {problem}")]
    Key { file: String, problem: String },
    #[error(
        "plan {plan} is not signed, and this command verifies signatures (key file '{key_file}'); apply only plans your CI signed with 'seqmig plan --sign-key-file'"
    )]
    Unsigned { plan: String, key_file: String },
    #[error(
        "the signature of plan {plan} does not verify with key file '{key_file}': the plan was changed after signing, or signed with another key"
    )]
    Mismatch { plan: String, key_file: String },
    #[error("the signature of plan {plan} is not of the form '{SIGNATURE_PREFIX}<64 hex digits>'")]
    Malformed { plan: String },
}

impl PlanKey {
    /// Reads a key file.
    pub fn from_file(path: &Path) -> Result<PlanKey, SignatureError> {
        let file = path.display().to_string();
        let bad = |problem: String| SignatureError::Key { file: file.clone(), problem };
        let raw = std::fs::read(path).map_err(|e| bad(format!("cannot be read: {e}")))?;
        let bytes = raw.trim_ascii().to_vec();
        if bytes.len() < MIN_KEY_BYTES {
            return Err(bad(format!(
                "holds {} byte(s); a signing key needs at least {MIN_KEY_BYTES} (e.g. 'openssl rand -hex 32')",
                bytes.len()
            )));
        }
        Ok(PlanKey { bytes, file })
    }

    /// The key file named by `flag`, else by the environment variable `env`, else none. An
    /// empty variable counts as unset.
    pub fn from_flag_or_env(flag: Option<&Path>, env: &str) -> Result<Option<PlanKey>, SignatureError> {
        match flag {
            Some(p) => Ok(Some(PlanKey::from_file(p)?)),
            None => match std::env::var_os(env).filter(|v| !v.is_empty()) {
                Some(p) => Ok(Some(PlanKey::from_file(Path::new(&p))?)),
                None => Ok(None),
            },
        }
    }

    /// The file the key came from, for messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    fn mac(&self, plan: &Plan) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.bytes).expect("HMAC takes any key length");
        mac.update(&plan.canonical_bytes());
        mac
    }

    /// `plan` with its signature set; the id is unchanged.
    pub fn sign(&self, mut plan: Plan) -> Plan {
        let tag = self.mac(&plan).finalize().into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        plan.signature = Some(format!("{SIGNATURE_PREFIX}{hex}"));
        plan
    }

    /// Accepts `plan` only when it carries a signature made with this key over its current
    /// content (compared in constant time).
    pub fn verify(&self, plan: &Plan) -> Result<(), SignatureError> {
        let short = plan.short_id().to_string();
        let Some(sig) = &plan.signature else {
            return Err(SignatureError::Unsigned { plan: short, key_file: self.file.clone() });
        };
        let tag = sig
            .strip_prefix(SIGNATURE_PREFIX)
            .and_then(decode_hex)
            .filter(|t| t.len() == 32)
            .ok_or_else(|| SignatureError::Malformed { plan: short.clone() })?;
        self.mac(plan)
            .verify_slice(&tag)
            .map_err(|_| SignatureError::Mismatch { plan: short, key_file: self.file.clone() })
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{GateSpec, LockMode, Phase, Step};

    fn key(text: &str) -> PlanKey {
        PlanKey { bytes: text.as_bytes().to_vec(), file: "k".into() }
    }

    fn plan() -> Plan {
        let s = Step::new("s1", "c1", Phase::Expand, "SELECT 1", LockMode::None, "");
        Plan::assemble(vec![], vec![s], vec![], GateSpec::default())
    }

    #[test]
    fn signed_plan_verifies_and_keeps_its_id() {
        let p = plan();
        let signed = key("0123456789abcdef0123").sign(p.clone());
        assert_eq!(signed.id, p.id);
        assert_eq!(signed.compute_id(), p.id, "the signature is outside the id");
        key("0123456789abcdef0123").verify(&signed).unwrap();
        let back = Plan::from_json(&signed.to_json_pretty()).unwrap();
        key("0123456789abcdef0123").verify(&back).unwrap();
    }

    #[test]
    fn unsigned_edited_or_foreign_plans_are_refused() {
        let k = key("0123456789abcdef0123");
        assert!(matches!(k.verify(&plan()), Err(SignatureError::Unsigned { .. })));
        let mut edited = k.sign(plan());
        edited.steps[0].sql.push_str("; CREATE TABLE pwned ()");
        let edited = Plan { id: String::new(), ..edited }.seal();
        assert!(matches!(k.verify(&edited), Err(SignatureError::Mismatch { .. })));
        let foreign = key("another key, 20 bytes").sign(plan());
        assert!(matches!(k.verify(&foreign), Err(SignatureError::Mismatch { .. })));
        let mut bad = k.sign(plan());
        bad.signature = Some("hmac-sha256:zz".into());
        assert!(matches!(k.verify(&bad), Err(SignatureError::Malformed { .. })));
    }
}
