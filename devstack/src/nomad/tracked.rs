//! A map that remembers which keys were written since the last [`TrackedMap::take_touched`], so
//! the event stream examines only the objects a write touched instead of scanning the whole
//! state on every write (O(changed), not O(N) per write and O(N²) over a first sync).
//!
//! Reads go through `Deref` to the `BTreeMap`; there is no `DerefMut`, so every mutable access
//! goes through a method here and no write site can forget to record what it touched.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
pub(crate) struct TrackedMap<K: Ord + Clone, V> {
    map: BTreeMap<K, V>,
    touched: BTreeSet<K>,
}

impl<K: Ord + Clone, V> Default for TrackedMap<K, V> {
    fn default() -> Self {
        Self {
            map: BTreeMap::new(),
            touched: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone, V> std::ops::Deref for TrackedMap<K, V> {
    type Target = BTreeMap<K, V>;
    fn deref(&self) -> &BTreeMap<K, V> {
        &self.map
    }
}

impl<K: Ord + Clone, V> FromIterator<(K, V)> for TrackedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            map: iter.into_iter().collect(),
            touched: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Clone, V> TrackedMap<K, V> {
    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        let (owned, _) = self.map.get_key_value(key)?;
        self.touched.insert(owned.clone());
        let value = self.map.get_mut(key)?;
        Some(value)
    }

    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        self.touched.insert(key.clone());
        self.map.insert(key, value)
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.touched.remove(key);
        self.map.remove(key)
    }

    /// The value at `key`, inserting `make()` first when absent.
    pub(crate) fn get_or_insert_with(&mut self, key: K, make: impl FnOnce() -> V) -> &mut V {
        self.touched.insert(key.clone());
        self.map.entry(key).or_insert_with(make)
    }

    /// Mutable access to the values whose keys `select` picks (only those count as touched).
    pub(crate) fn values_mut_where(
        &mut self,
        mut select: impl FnMut(&V) -> bool,
    ) -> impl Iterator<Item = &mut V> {
        let picked: Vec<K> = self
            .map
            .iter()
            .filter(|(_, v)| select(v))
            .map(|(k, _)| k.clone())
            .collect();
        self.touched.extend(picked.iter().cloned());
        self.map
            .iter_mut()
            .filter(move |(k, _)| picked.binary_search(k).is_ok())
            .map(|(_, v)| v)
    }

    /// The keys written since the last call.
    pub(crate) fn take_touched(&mut self) -> BTreeSet<K> {
        std::mem::take(&mut self.touched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_written_keys_count_as_touched() {
        let mut m: TrackedMap<u32, u32> = (0..100).map(|i| (i, i)).collect();
        assert!(m.take_touched().is_empty());
        let _ = m.get(&5);
        if let Some(v) = m.get_mut(&7) {
            *v += 1;
        }
        m.insert(200, 0);
        for v in m.values_mut_where(|v| *v == 9) {
            *v = 10;
        }
        assert_eq!(m.take_touched(), BTreeSet::from([7, 9, 200]));
        assert!(m.take_touched().is_empty());
        assert_eq!(m[&9], 10);
    }
}
