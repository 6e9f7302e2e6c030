//! The real binary as an operator runs it: a clean environment, its output read in the
//! background, signals, and a bound on how long any one command may take.

use std::io::Read;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::app::TestApp;

const BIN: &str = env!("CARGO_BIN_EXE_openai-audit-ingest");

/// How long any one command may take before the test gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

impl TestApp {
    /// The binary with a clean environment: only `PATH`, this app's environment (the
    /// simulator, the state directory, fast timings), then `extra` (which may override it).
    pub fn binary(&self, args: &[&str], extra: &[(&str, &str)]) -> Command {
        let mut cmd = bare(args);
        cmd.envs(&self.env);
        cmd.envs(extra.iter().copied());
        cmd
    }

    /// Runs [`TestApp::binary`] to completion (bounded by [`COMMAND_TIMEOUT`]) and collects
    /// what it said.
    pub async fn run_binary(&self, args: &[&str], extra: &[(&str, &str)]) -> Output {
        output(self.binary(args, extra)).await
    }

    /// Starts [`TestApp::binary`], its output read in the background.
    pub fn start_binary(&self, args: &[&str], extra: &[(&str, &str)]) -> RunningBinary {
        RunningBinary::start(self.binary(args, extra))
    }

    /// [`TestApp::start_binary`] with the keys `unset` left out of the environment (to get a
    /// default, or because a secret comes from a file instead).
    pub fn start_binary_without(&self, args: &[&str], extra: &[(&str, &str)], unset: &[&str]) -> RunningBinary {
        let mut cmd = self.binary(args, extra);
        for key in unset {
            cmd.env_remove(key);
        }
        RunningBinary::start(cmd)
    }

    /// Writes `content` as the file `name` in the state directory (a key or token file, as a
    /// container secret would be) and returns its path.
    pub fn secret_file(&self, name: &str, content: &str) -> String {
        let path = self.state_path().join(name);
        std::fs::write(&path, content).expect("secret file written");
        path.display().to_string()
    }
}

/// The binary with nothing in its environment but `PATH`.
pub fn bare(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `cmd` to completion (bounded by [`COMMAND_TIMEOUT`]) and collects its output.
pub async fn output(cmd: Command) -> Output {
    RunningBinary::start(cmd).finish(COMMAND_TIMEOUT).await
}

/// Bytes as text, for reading what a process printed.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Everything a finished command said, for assertion messages.
pub fn describe(out: &Output) -> String {
    format!(
        "status: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// Sends `signal` (as `kill` spells it, e.g. `-TERM`) to the process `pid`.
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {signal} {pid} failed: {status:?}");
}

/// Bytes a pipe has delivered so far, filled by a reader thread.
type Captured = Arc<Mutex<Vec<u8>>>;

/// A running child whose stdout and stderr are read in the background (so a chatty process
/// never blocks on a full pipe, and a test can look at what it printed so far). Killed if
/// the test ends without waiting for it.
pub struct RunningBinary {
    /// The process; `None` once it has been waited for, so `Drop` knows not to kill it.
    child: Option<Child>,
    /// Everything the process printed on stdout so far.
    stdout: Captured,
    /// Everything the process printed on stderr so far.
    stderr: Captured,
    /// The threads draining the two pipes; joined once the process has exited.
    readers: Vec<JoinHandle<()>>,
}

fn capture(pipe: Option<impl Read + Send + 'static>, into: &Captured) -> JoinHandle<()> {
    let into = Arc::clone(into);
    std::thread::spawn(move || {
        let Some(mut pipe) = pipe else { return };
        let mut chunk = [0u8; 8192];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => into
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(&chunk[..n]),
            }
        }
    })
}

impl RunningBinary {
    /// Starts `cmd` with both output pipes read in the background.
    pub fn start(mut cmd: Command) -> Self {
        let mut child = cmd.spawn().expect("the binary starts");
        let (stdout, stderr) = (Captured::default(), Captured::default());
        let readers = vec![
            capture(child.stdout.take(), &stdout),
            capture(child.stderr.take(), &stderr),
        ];
        Self {
            child: Some(child),
            stdout,
            stderr,
            readers,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("not finished").id()
    }

    /// What the process printed on stdout so far.
    pub fn stdout_so_far(&self) -> String {
        text(&self.stdout.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// What the process printed on stderr so far (its log).
    pub fn stderr_so_far(&self) -> String {
        text(&self.stderr.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Waits up to `limit` for the process to exit (checking every 20 ms) and returns what
    /// it said; kills it and fails the test if it does not.
    pub async fn finish(mut self, limit: Duration) -> Output {
        let deadline = tokio::time::Instant::now() + limit;
        let status = loop {
            let child = self.child.as_mut().expect("not finished");
            if let Some(status) = child.try_wait().expect("waiting for the child") {
                break status;
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the process did not exit within {limit:?}; stderr:\n{}",
                    text(&self.stderr.lock().unwrap_or_else(|e| e.into_inner()))
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.child = None;
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let take = |c: &Captured| std::mem::take(&mut *c.lock().unwrap_or_else(|e| e.into_inner()));
        Output {
            status,
            stdout: take(&self.stdout),
            stderr: take(&self.stderr),
        }
    }
}

impl Drop for RunningBinary {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A loopback address with a port nobody listens on now, for the daemon's `server.listen`.
pub fn free_listen_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").to_string()
}

/// GETs `path` of the daemon's health/metrics server at `addr`: the status and the body, or
/// `None` while nothing answers there yet.
pub async fn get(addr: &str, path: &str) -> Option<(u16, String)> {
    let response = reqwest::Client::new()
        .get(format!("http://{addr}{path}"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.unwrap_or_default()))
}

/// Polls `path` of the daemon's server at `addr` until it answers `status` (failing the test
/// after `limit`), and returns that answer's body.
pub async fn wait_for_status(addr: &str, path: &str, status: u16, limit: Duration) -> String {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some((got, body)) = get(addr, path).await
            && got == status
        {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} did not answer {status} within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
