//! Per-request lookups that rarely change — the session behind a cookie, a person's access,
//! the category tree, the item behind every media segment — cached for one database write
//! generation. Any write through the server (a grant, a revocation, a session renewal, a
//! transcode finishing) bumps the generation, so a cached value is never older than the last
//! write; revocations take effect on the very next request. A command-line write beside the
//! server counts from the next request after the command ends; another long-running writer's
//! within `db::OTHER_WRITERS_POLL` (see `db::changes`).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use crate::accounts::grants::Access;
use crate::accounts::sessions::ActiveSession;
use crate::db::ids::{MediaId, UserId};
use crate::library::categories::Category;
use crate::library::media::MediaItem;

/// Entries kept per map before it is emptied (a bound, not a tuning knob).
const MAX_ENTRIES: usize = 10_000;

struct Generational<K, V> {
    map: Mutex<HashMap<K, (u64, V)>>,
}

impl<K: Eq + Hash, V: Clone> Generational<K, V> {
    fn new() -> Self {
        Generational { map: Mutex::new(HashMap::new()) }
    }

    fn get(&self, key: &K, generation: u64) -> Option<V> {
        let map = self.map.lock().ok()?;
        map.get(key).filter(|(g, _)| *g == generation).map(|(_, v)| v.clone())
    }

    fn put(&self, key: K, generation: u64, value: V) {
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= MAX_ENTRIES {
                map.retain(|_, (g, _)| *g == generation);
                if map.len() >= MAX_ENTRIES {
                    map.clear();
                }
            }
            map.insert(key, (generation, value));
        }
    }
}

pub struct Caches {
    /// SHA-256 of a session token → the session (or `None`: unknown or ended).
    sessions: Generational<Vec<u8>, Option<Arc<ActiveSession>>>,
    access: Generational<Option<(UserId, bool)>, Arc<Access>>,
    categories: Generational<(), Arc<Vec<Category>>>,
    /// An item's row (or `None`: no such item), before any permission check.
    items: Generational<MediaId, Option<Arc<MediaItem>>>,
}

impl Default for Caches {
    fn default() -> Self {
        Caches {
            sessions: Generational::new(),
            access: Generational::new(),
            categories: Generational::new(),
            items: Generational::new(),
        }
    }
}

impl Caches {
    pub fn session(&self, token_hash: &Vec<u8>, generation: u64) -> Option<Option<Arc<ActiveSession>>> {
        self.sessions.get(token_hash, generation)
    }
    pub fn put_session(&self, token_hash: Vec<u8>, generation: u64, s: Option<Arc<ActiveSession>>) {
        self.sessions.put(token_hash, generation, s);
    }
    pub fn access(&self, who: &Option<(UserId, bool)>, generation: u64) -> Option<Arc<Access>> {
        self.access.get(who, generation)
    }
    pub fn put_access(&self, who: Option<(UserId, bool)>, generation: u64, a: Arc<Access>) {
        self.access.put(who, generation, a);
    }
    pub fn categories(&self, generation: u64) -> Option<Arc<Vec<Category>>> {
        self.categories.get(&(), generation)
    }
    pub fn put_categories(&self, generation: u64, c: Arc<Vec<Category>>) {
        self.categories.put((), generation, c);
    }
    pub fn item(&self, id: MediaId, generation: u64) -> Option<Option<Arc<MediaItem>>> {
        self.items.get(&id, generation)
    }
    pub fn put_item(&self, id: MediaId, generation: u64, item: Option<Arc<MediaItem>>) {
        self.items.put(id, generation, item);
    }
}
