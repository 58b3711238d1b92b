//! Servers a test starts as child processes on loopback (git daemon, sshd), shared by the
//! test files that include it with `#[path]`.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A port nothing listens on right now (only for "nothing answers there" tests: a server is
/// started with [`spawn_listening`], which survives losing the port to another process).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Start a server that must be told its port up front (git daemon, sshd): pick a free port, start
/// it, and wait until it listens; if it exits first (another process took the port between the
/// pick and its bind), try again on a new port.
#[expect(
    clippy::disallowed_methods,
    reason = "a synchronous helper waiting for a child process to listen"
)]
pub fn spawn_listening(mut command_for: impl FnMut(u16) -> Command) -> (KillOnDrop, u16) {
    for _ in 0..5 {
        let port = free_port();
        let child = command_for(port)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the server program starts");
        let mut child = KillOnDrop(child);
        for _ in 0..200 {
            if let Ok(Some(_)) = child.0.try_wait() {
                break;
            }
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return (child, port);
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }
    panic!("the server never listened on a loopback port (five ports tried)");
}

/// Kills the child process (git daemon) when dropped, even if the test panics.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
