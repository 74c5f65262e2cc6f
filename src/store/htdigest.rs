//! Apache `htdigest` password files (`user:realm:HA1`) as a credential
//! source, reloaded when the file changes.
//!
//! They hold MD5 HA1 values only, so this store serves `MD5` and `MD5-sess`
//! and nothing else: a configuration offering SHA-256 with it is refused at
//! ignite, naming `digest_auth.algorithms`.
//!
//! ```
//! use rocket_digest_auth::store::{CredentialStore, HtdigestFile};
//!
//! # rocket::async_test(async {
//! let dir = std::env::temp_dir().join(format!("htdigest-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("users.htdigest");
//! // htdigest -c users.htdigest example alice   (password "secret")
//! std::fs::write(&path, "alice:example:a110383056f556b818bd7026fed7451b\n").unwrap();
//! let store = HtdigestFile::open(&path, "example").unwrap();
//! assert!(store.credential("alice").await.unwrap().is_some());
//! assert!(store.credential("bob").await.unwrap().is_none());
//! # });
//! ```

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::SystemTime;

use super::{Credential, CredentialStore, HashFunction, Secret, StoreError};

/// What identifies one version of the file: a rewrite changes at least one.
type Stamp = (Option<SystemTime>, u64, u64);

#[derive(Debug, Default)]
struct Loaded {
    stamp: Option<Stamp>,
    ha1: HashMap<String, String>,
}

/// An `htdigest` file: the users of one realm and their MD5 HA1 values.
#[derive(Debug)]
pub struct HtdigestFile {
    path: PathBuf,
    realm: String,
    loaded: RwLock<Loaded>,
}

impl HtdigestFile {
    /// Opens and reads `path`, keeping the entries of `realm`.
    pub fn open(path: impl AsRef<Path>, realm: &str) -> Result<HtdigestFile, StoreError> {
        let file = HtdigestFile {
            path: path.as_ref().to_owned(),
            realm: realm.to_owned(),
            loaded: RwLock::default(),
        };
        file.refresh()?;
        Ok(file)
    }

    /// Re-reads the file if it changed since the last read. A file that
    /// cannot be read is an error (the request gets 503), not "no users".
    fn refresh(&self) -> Result<(), StoreError> {
        let meta = fs::metadata(&self.path)
            .map_err(|e| StoreError::new(format!("{}: {e}", self.path.display())))?;
        let stamp = (meta.modified().ok(), meta.len(), meta.ino());
        if self.read().stamp == Some(stamp) {
            return Ok(());
        }
        let text = fs::read_to_string(&self.path)
            .map_err(|e| StoreError::new(format!("{}: {e}", self.path.display())))?;
        let ha1 = text
            .lines()
            .filter_map(|line| {
                let mut fields = line.trim_end_matches('\r').splitn(3, ':');
                let (user, realm, ha1) = (fields.next()?, fields.next()?, fields.next()?);
                let valid = realm == self.realm
                    && !user.is_empty()
                    && ha1.len() == 32
                    && ha1.bytes().all(|b| b.is_ascii_hexdigit());
                valid.then(|| (user.to_owned(), ha1.to_ascii_lowercase()))
            })
            .collect();
        *self.loaded.write().unwrap_or_else(|e| e.into_inner()) = Loaded {
            stamp: Some(stamp),
            ha1,
        };
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.loaded.read().unwrap_or_else(|e| e.into_inner())
    }

    fn credential_of(username: &str, ha1: &str) -> Credential {
        Credential {
            username: username.into(),
            secret: Secret::Ha1 {
                md5: Some(ha1.into()),
                sha256: None,
                sha512_256: None,
            },
            created_at: None,
        }
    }
}

#[rocket::async_trait]
impl CredentialStore for HtdigestFile {
    async fn credential(&self, username: &str) -> Result<Option<Credential>, StoreError> {
        self.refresh()?;
        let loaded = self.read();
        Ok(loaded
            .ha1
            .get(username)
            .map(|ha1| Self::credential_of(username, ha1)))
    }

    async fn credential_by_userhash(
        &self,
        hash: HashFunction,
        userhash: &str,
    ) -> Result<Option<Credential>, StoreError> {
        self.refresh()?;
        let loaded = self.read();
        Ok(loaded
            .ha1
            .iter()
            .find(|(user, _)| hash.hex(&[user.as_bytes(), b":", self.realm.as_bytes()]) == userhash)
            .map(|(user, ha1)| Self::credential_of(user, ha1)))
    }

    fn hash_functions(&self) -> &'static [HashFunction] {
        &[HashFunction::Md5]
    }
}
