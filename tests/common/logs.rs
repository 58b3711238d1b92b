//! Every log line drover writes in a test binary, at every level, for tests that scan them for
//! secrets: one global TRACE subscriber writing into a shared buffer.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// The buffer the global subscriber writes into (installed on first use).
pub fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
    .clone()
}

/// Everything logged so far, as text.
pub fn logs_text() -> String {
    let bytes = captured_logs()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    String::from_utf8_lossy(&bytes).to_string()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
