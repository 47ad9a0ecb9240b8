//! A service binary run as a child process, the way an orchestrator runs it: with exactly the
//! environment it is given, on a port of its own, stopped by a real SIGTERM. For the tests of
//! start-up and graceful shutdown, which need the process's own signal handling and exit status.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running service binary; killed when dropped if it is still running.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// `http://127.0.0.1:{port}`.
    pub base: String,
    log: PathBuf,
}

/// A port nobody listens on right now (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

impl ServiceProcess {
    /// Runs `bin` with exactly `env` (nothing inherited) and `addr_var=127.0.0.1:<a free
    /// port>`, its output (stdout and stderr) going to a file; returns at once.
    pub fn spawn(bin: &str, addr_var: &str, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("service-{}.log", uuid::Uuid::new_v4()));
        let out = std::fs::File::create(&log).expect("a log file");
        let err = out.try_clone().expect("the log file, twice");
        let child = Command::new(bin)
            .env_clear()
            .envs(env.iter().copied())
            .env(addr_var, format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("{bin} does not run: {e}"));
        Self {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// [`ServiceProcess::spawn`], then waits (at most 30 s) until `/healthz` answers 200;
    /// panics with the output when it does not.
    pub async fn start(bin: &str, addr_var: &str, env: &[(&str, &str)]) -> Self {
        let mut service = Self::spawn(bin, addr_var, env);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let health = client
                .get(format!("{}/healthz", service.base))
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return service;
            }
            if let Ok(Some(status)) = service.child.try_wait() {
                panic!("{bin} exited with {status}:\n{}", service.output());
            }
            assert!(
                Instant::now() < deadline,
                "{bin} did not answer within 30 s:\n{}",
                service.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM, as an orchestrator stopping it would.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits at most `within` for the process to exit; its exit code (`None`: still running,
    /// or ended by a signal).
    pub async fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("the child's status") {
                return status.code();
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything it wrote on stdout and stderr so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `true` when a new TCP connection to its port is refused.
    pub fn refuses_connections(&self) -> bool {
        std::net::TcpStream::connect_timeout(
            &([127, 0, 0, 1], self.port).into(),
            Duration::from_secs(1),
        )
        .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// Runs `bin` like [`ServiceProcess::spawn`] to its end (at most `within`, then it is
/// killed); its exit code and its output (stdout and stderr).
pub async fn run_to_end(
    bin: &str,
    addr_var: &str,
    env: &[(&str, &str)],
    within: Duration,
) -> (Option<i32>, String) {
    let mut service = ServiceProcess::spawn(bin, addr_var, env);
    let code = service.exit_code(within).await;
    (code, service.output())
}
