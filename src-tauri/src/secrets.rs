//! Remote tokens: kept in the OS keychain (`keyring`: Secret Service on
//! Linux, Keychain on macOS, Credential Manager on Windows) where there is
//! one; otherwise in memory only, for this run, and the app says so.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

/// Keychain service name.
const SERVICE: &str = "dev.switchyard.desktop";

/// How long a keychain call may take before we treat it as unavailable (a
/// headless session can leave a D-Bus call hanging).
const KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(3);

/// Where a token ended up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kept {
    /// In the OS keychain.
    Keychain,
    /// In memory only; the reason is shown to the user.
    MemoryOnly(String),
}

/// Tokens by server URL.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    memory: Mutex<HashMap<String, String>>,
}

impl Tokens {
    /// Keeps `token` for `url`: keychain first, memory as the fallback.
    pub(crate) fn store(&self, url: &str, token: &str) -> Kept {
        self.memory
            .lock()
            .expect("token map poisoned")
            .insert(url.to_owned(), token.to_owned());
        let (url, token) = (url.to_owned(), token.to_owned());
        match keychain(move || keyring::Entry::new(SERVICE, &url)?.set_password(&token)) {
            Ok(()) => Kept::Keychain,
            Err(reason) => {
                tracing::warn!(%reason, "no OS keychain: the token is kept in memory only");
                Kept::MemoryOnly(reason)
            }
        }
    }

    /// The token for `url`: memory (this run), else the keychain.
    pub(crate) fn load(&self, url: &str) -> Option<String> {
        if let Some(token) = self.memory.lock().expect("token map poisoned").get(url) {
            return Some(token.clone());
        }
        let key = url.to_owned();
        keychain(move || keyring::Entry::new(SERVICE, &key)?.get_password()).ok()
    }
}

/// Runs a keychain call on its own thread with a deadline: the Secret
/// Service client may block, and must not run inside the async runtime.
fn keychain<T: Send + 'static>(
    call: impl FnOnce() -> keyring::Result<T> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(call());
    });
    match rx.recv_timeout(KEYCHAIN_TIMEOUT) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the keychain did not answer in time".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_token_loads_back_from_the_keychain_or_memory() {
        let url = format!("http://secrets-test.invalid:{}", std::process::id());
        let tokens = Tokens::default();
        let started = std::time::Instant::now();
        let kept = tokens.store(&url, "t0ken");
        assert!(started.elapsed() <= KEYCHAIN_TIMEOUT + Duration::from_secs(1));
        match &kept {
            Kept::Keychain => {
                // A fresh store (a new run) finds it in the keychain.
                assert_eq!(Tokens::default().load(&url).as_deref(), Some("t0ken"));
                let key = url.clone();
                let _ = keychain(move || keyring::Entry::new(SERVICE, &key)?.delete_credential());
            }
            Kept::MemoryOnly(reason) => assert!(!reason.is_empty()),
        }
        assert_eq!(tokens.load(&url).as_deref(), Some("t0ken"));
    }
}
