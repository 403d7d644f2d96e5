//! Password hashing (argon2id) and the rules a new password must pass.

use std::collections::HashSet;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier, phc::PasswordHash};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::PasswordConfig;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRule {
    #[error("must be at least {0} characters long")]
    TooShort(usize),
    #[error("must be at most 1024 characters long")]
    TooLong,
    #[error(
        "is one of the passwords people choose most often; pick something less predictable, such as three or four unrelated words"
    )]
    Common,
    #[error("must not contain the username")]
    ContainsUsername,
}

/// Argon2id with the configured cost.
#[derive(Clone, Debug)]
pub struct Hasher {
    params: Params,
    min_length: usize,
}

impl Hasher {
    pub fn new(cfg: &PasswordConfig) -> Result<Hasher, argon2::Error> {
        let params = Params::new(cfg.argon2_memory_kib, cfg.argon2_iterations, cfg.argon2_parallelism, None)?;
        Ok(Hasher { params, min_length: cfg.min_length })
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string (`$argon2id$v=19$m=...`) with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String, argon2::password_hash::Error> {
        Ok(self.argon2().hash_password(password.as_bytes())?.to_string())
    }

    /// Check `password` against a stored PHC string. Malformed stored hashes never verify.
    pub fn verify(&self, password: &str, stored: &str) -> bool {
        match PasswordHash::new(stored) {
            Ok(parsed) => self.argon2().verify_password(password.as_bytes(), &parsed).is_ok(),
            Err(_) => false,
        }
    }

    /// Spend the same time as a real verification, for unknown accounts (no user enumeration by timing).
    pub fn verify_dummy(&self, password: &str) {
        static DUMMY: OnceLock<String> = OnceLock::new();
        let dummy = DUMMY.get_or_init(|| self.hash("reelbox-dummy-password-for-timing").unwrap_or_default());
        let _ = self.verify(password, dummy);
    }

    /// True when `stored` was made with weaker or different parameters than configured now.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else { return true };
        if parsed.algorithm.as_str() != "argon2id" {
            return true;
        }
        match Params::try_from(&parsed) {
            Ok(p) => {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            }
            Err(_) => true,
        }
    }

    /// Apply the password rules; the error says which rule failed.
    pub fn check_rules(&self, username: &str, password: &str) -> Result<(), PasswordRule> {
        let chars = password.chars().count();
        if chars < self.min_length {
            return Err(PasswordRule::TooShort(self.min_length));
        }
        if chars > 1024 {
            return Err(PasswordRule::TooLong);
        }
        let lower = password.to_lowercase();
        let user = username.to_lowercase();
        if user.chars().count() >= 4 && lower.contains(&user) {
            return Err(PasswordRule::ContainsUsername);
        }
        if is_common(&lower) {
            return Err(PasswordRule::Common);
        }
        Ok(())
    }
}

fn common_list() -> &'static HashSet<&'static str> {
    static LIST: OnceLock<HashSet<&'static str>> = OnceLock::new();
    LIST.get_or_init(|| {
        include_str!("common_passwords.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Words that, padded with digits and symbols, make most "long" common passwords.
const COMMON_WORDS: &[&str] = &[
    "password",
    "passwort",
    "welcome",
    "letmein",
    "iloveyou",
    "qwerty",
    "admin",
    "administrator",
    "football",
    "baseball",
    "monkey",
    "dragon",
    "sunshine",
    "princess",
    "master",
    "shadow",
    "superman",
    "batman",
    "computer",
    "internet",
    "school",
    "teacher",
    "student",
    "summer",
    "winter",
    "spring",
    "autumn",
    "hello",
    "secret",
    "changeme",
    "login",
    "default",
    "reelbox",
    "pokemon",
    "minecraft",
    "fortnite",
    "roblox",
    "liverpool",
    "chelsea",
    "arsenal",
    "london",
    "soccer",
    "starwars",
    "trustno",
    "whatever",
    "freedom",
];

fn is_common(lower: &str) -> bool {
    if common_list().contains(lower) {
        return true;
    }
    // One character, or one short block, repeated ("aaaaaaaaaaaa", "abcabcabcabc").
    let bytes = lower.as_bytes();
    for block in 1..=4 {
        if bytes.len() >= block * 3 && bytes.chunks(block).all(|c| bytes[..c.len()] == *c) {
            return true;
        }
    }
    // A straight run up or down ("123456789012" is caught by the list; "abcdefghijklm", "987654321098").
    if bytes.len() >= 8 && is_run(bytes) {
        return true;
    }
    // A common word, perhaps in leetspeak, padded with digits and symbols ("P@ssw0rd2024!",
    // "Welcome123456") or said twice ("passwordpassword").
    let trimmed = lower.trim_start_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation());
    COMMON_WORDS.iter().any(|word| match leet_prefix(trimmed, word) {
        Some(rest) => rest.chars().all(|c| !c.is_alphabetic()) || leet_prefix(rest, word) == Some(""),
        None => false,
    })
}

/// If `text` starts with `word` (letters may be written as look-alike digits or symbols),
/// what follows it.
fn leet_prefix<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let mut rest = text.char_indices();
    for want in word.chars() {
        let (_, got) = rest.next()?;
        let plain = match got {
            '@' | '4' => 'a',
            '3' => 'e',
            '1' | '!' | '|' => 'i',
            '0' => 'o',
            '$' | '5' => 's',
            '7' => 't',
            other => other,
        };
        if got != want && plain != want {
            return None;
        }
    }
    Some(rest.as_str())
}

fn is_run(bytes: &[u8]) -> bool {
    let ups = bytes.windows(2).all(|w| w[1] == w[0].wrapping_add(1) || (w[0] == b'9' && w[1] == b'0'));
    let downs = bytes.windows(2).all(|w| w[1].wrapping_add(1) == w[0] || (w[0] == b'0' && w[1] == b'9'));
    ups || downs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hasher() -> Hasher {
        Hasher::new(&PasswordConfig::default()).expect("params")
    }

    #[test]
    fn hash_is_argon2id_with_owasp_minimum_and_verifies() {
        let h = hasher();
        let stored = h.hash("correct horse battery").expect("hash");
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(h.verify("correct horse battery", &stored));
        assert!(!h.verify("correct horse batterY", &stored));
        assert!(!h.verify("anything", "not a phc string"));
        assert!(!h.needs_rehash(&stored));
    }

    #[test]
    fn raised_parameters_ask_for_rehash() {
        let old = hasher().hash("correct horse battery").expect("hash");
        let stronger =
            Hasher::new(&PasswordConfig { argon2_memory_kib: 32_768, ..PasswordConfig::default() })
                .expect("params");
        assert!(stronger.needs_rehash(&old));
        assert!(stronger.verify("correct horse battery", &old), "old hashes still verify");
    }

    #[test]
    fn rules() {
        let h = hasher();
        assert_eq!(h.check_rules("amy", "short"), Err(PasswordRule::TooShort(12)));
        assert_eq!(h.check_rules("amy", "password1234"), Err(PasswordRule::Common));
        assert_eq!(h.check_rules("amy", "P@ssw0rd2024!"), Err(PasswordRule::Common));
        assert_eq!(h.check_rules("amy", "Welcome123456"), Err(PasswordRule::Common));
        assert_eq!(h.check_rules("amy", "aaaaaaaaaaaaaa"), Err(PasswordRule::Common));
        assert_eq!(h.check_rules("amy", "abcabcabcabc"), Err(PasswordRule::Common));
        assert_eq!(h.check_rules("amy", "987654321098"), Err(PasswordRule::Common));
        assert_eq!(h.check_rules("amy", "QWERTYUIOP123"), Err(PasswordRule::Common));
        assert_eq!(h.check_rules("jsmith", "jsmith-is-great-42"), Err(PasswordRule::ContainsUsername));
        assert_eq!(h.check_rules("amy", "violet tractor umbrella"), Ok(()));
        assert_eq!(h.check_rules("amy", "Kettle-Orbit-Mango-7"), Ok(()));
        // Counted in characters, not bytes.
        assert_eq!(h.check_rules("amy", "ééééé-ñ"), Err(PasswordRule::TooShort(12)));
    }
}
