//! LiveStore: one watcher per system fills a cache of live state; planning reads only the cache.
