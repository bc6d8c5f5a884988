//! The subjects' pseudonyms: the only place a consenting person's identity meets the pseudonym
//! their consents are recorded under (a small sled tree, `aux/subjects`).
//!
//! Each tenant has a random secret; a subject is filed under the HMAC of its normalized form with
//! that secret ([`lookup_key`]), and the entry holds the subject's pseudonym, drawn at random when
//! the subject is first seen. Decisions, the consent ledger and every answer carry the pseudonym
//! only. Erasure deletes the entry: the pseudonym stays in the decisions, but nothing maps a phone
//! number or an address to it any more, and the same person consenting again gets a new one.
//! The lookup key is never written anywhere else.
//!
//! sled keeps a deleted entry's bytes in its log until it reclaims the segment, so a raw copy of
//! the data folder taken right after an erasure still holds them; the knowledge base's content and
//! its export do not.

use crate::domain::compliance::intake::{Subject, lookup_key};
use crate::kb::{KbError, KnowledgeBase};
use crate::protocol::TenantId;

/// The prefix that marks a subject as a person's pseudonym (a segment subject has none).
pub const PSEUDONYM_PREFIX: &str = "subject:";

pub struct SubjectKeys {
    tree: sled::Tree,
}

fn storage(e: impl std::fmt::Display) -> KbError {
    KbError::Storage {
        path: "aux/subjects".into(),
        reason: e.to_string(),
    }
}

fn secret_key(tenant: &TenantId) -> Vec<u8> {
    [b"t\0".as_slice(), tenant.as_str().as_bytes()].concat()
}

impl SubjectKeys {
    pub fn open(kb: &KnowledgeBase) -> Result<Self, KbError> {
        Ok(SubjectKeys {
            tree: kb.auxiliary_tree("subjects")?,
        })
    }

    /// The tenant's secret, drawn on first use; of two concurrent first uses one wins, and both
    /// read the winner's.
    fn secret(&self, tenant: &TenantId) -> Result<Vec<u8>, KbError> {
        let key = secret_key(tenant);
        if let Some(secret) = self.tree.get(&key).map_err(storage)? {
            return Ok(secret.to_vec());
        }
        let drawn: [u8; 32] = rand::random();
        match self
            .tree
            .compare_and_swap(&key, None::<&[u8]>, Some(drawn.as_slice()))
            .map_err(storage)?
        {
            Ok(()) => Ok(drawn.to_vec()),
            Err(lost) => lost
                .current
                .map(|s| s.to_vec())
                .ok_or_else(|| storage("a tenant secret vanished while it was drawn")),
        }
    }

    fn entry_key(&self, tenant: &TenantId, subject: &Subject) -> Result<Vec<u8>, KbError> {
        let secret = self.secret(tenant)?;
        let lookup = lookup_key(&secret, subject);
        Ok([
            b"s\0".as_slice(),
            tenant.as_str().as_bytes(),
            b"\0",
            lookup.as_slice(),
        ]
        .concat())
    }

    /// The subject's pseudonym, if it has one (it consented through campaignd and was not
    /// erased since).
    pub fn find(&self, tenant: &TenantId, subject: &Subject) -> Result<Option<String>, KbError> {
        let key = self.entry_key(tenant, subject)?;
        self.tree
            .get(key)
            .map_err(storage)?
            .map(|v| String::from_utf8(v.to_vec()).map_err(storage))
            .transpose()
    }

    /// The subject's pseudonym, drawn now if it has none. Not yet durable: [`Self::flush`] before
    /// a decision is acknowledged under it.
    pub fn pseudonym(&self, tenant: &TenantId, subject: &Subject) -> Result<String, KbError> {
        let key = self.entry_key(tenant, subject)?;
        if let Some(found) = self.tree.get(&key).map_err(storage)? {
            return String::from_utf8(found.to_vec()).map_err(storage);
        }
        let drawn: [u8; 16] = rand::random();
        let pseudonym = format!("{PSEUDONYM_PREFIX}{}", hex(&drawn));
        match self
            .tree
            .compare_and_swap(&key, None::<&[u8]>, Some(pseudonym.as_bytes()))
            .map_err(storage)?
        {
            Ok(()) => Ok(pseudonym),
            Err(lost) => lost
                .current
                .map(|v| String::from_utf8(v.to_vec()).map_err(storage))
                .transpose()?
                .ok_or_else(|| storage("a pseudonym vanished while it was drawn")),
        }
    }

    /// Forgets which subject `pseudonym` belongs to, durably. Answers the pseudonym that was
    /// erased, or `None` if the subject had none.
    pub async fn erase(
        &self,
        tenant: &TenantId,
        subject: &Subject,
    ) -> Result<Option<String>, KbError> {
        let key = self.entry_key(tenant, subject)?;
        let removed = self.tree.remove(key).map_err(storage)?;
        self.flush().await?;
        removed
            .map(|v| String::from_utf8(v.to_vec()).map_err(storage))
            .transpose()
    }

    pub async fn flush(&self) -> Result<(), KbError> {
        self.tree.flush_async().await.map_err(storage)?;
        Ok(())
    }

    /// Every (key, value) pair of the tree, for the erasure test's search through it.
    #[cfg(test)]
    pub fn dump(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.tree
            .iter()
            .flatten()
            .map(|(k, v)| (k.to_vec(), v.to_vec()))
            .collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kb::KbOptions;

    fn keys() -> (tempfile::TempDir, KnowledgeBase) {
        let dir = tempfile::tempdir().unwrap();
        let kb = KnowledgeBase::open(&KbOptions::at(dir.path().join("kb"))).unwrap();
        (dir, kb)
    }

    #[tokio::test]
    async fn a_subject_keeps_its_pseudonym_until_erased() {
        let (_dir, kb) = keys();
        let keys = SubjectKeys::open(&kb).unwrap();
        let acme = TenantId::new("acme");
        let written = Subject::parse("010-1234-5678").unwrap();
        let subject = Subject::parse("01012345678").unwrap();
        let first = keys.pseudonym(&acme, &written).unwrap();
        assert!(first.starts_with(PSEUDONYM_PREFIX));
        assert_eq!(keys.pseudonym(&acme, &subject).unwrap(), first);
        assert_eq!(
            keys.find(&acme, &subject).unwrap().as_deref(),
            Some(first.as_str())
        );
        let other = keys.pseudonym(&TenantId::new("globex"), &subject).unwrap();
        assert_ne!(
            other, first,
            "another tenant's subject is another pseudonym"
        );
        assert_eq!(
            keys.erase(&acme, &subject).await.unwrap().as_deref(),
            Some(first.as_str())
        );
        assert_eq!(keys.find(&acme, &subject).unwrap(), None);
        assert_ne!(keys.pseudonym(&acme, &subject).unwrap(), first);
        for (k, v) in keys.dump() {
            for bytes in [&k, &v] {
                let text = String::from_utf8_lossy(bytes);
                assert!(!text.contains("01012345678") && !text.contains(&first));
            }
        }
    }
}
