//! A stand-in for the Lambda Runtime API, enough to run a function binary
//! the way Lambda does: it hands out events on `GET .../invocation/next`
//! and records what the function posts back (`.../response` or
//! `.../error`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One HTTP request as the runtime client sent it.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: String,
}

fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// A function process under a fake Runtime API.
pub struct FakeLambda {
    child: Child,
    requests: mpsc::Receiver<Request>,
    early: std::cell::RefCell<std::collections::VecDeque<Request>>,
    events: mpsc::Sender<String>,
    pub started: Instant,
}

impl FakeLambda {
    /// Start `binary` with `env` (plus the variables Lambda sets).
    pub fn start(binary: &Path, env: &[(&str, &str)]) -> FakeLambda {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let api = listener.local_addr().expect("addr").to_string();
        let (request_tx, requests) = mpsc::channel();
        let (events, event_rx) = mpsc::channel::<String>();
        // The runtime's HTTP client may open a new connection for any
        // request, so every connection draws events from the same queue.
        // Request ids count across connections.
        let event_rx = Arc::new(Mutex::new(event_rx));
        let ids = Arc::new(AtomicU32::new(0));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let tx = request_tx.clone();
                let rx = Arc::clone(&event_rx);
                let ids = Arc::clone(&ids);
                std::thread::spawn(move || serve(stream, tx, rx, ids));
            }
        });
        let started = Instant::now();
        let mut command = Command::new(binary);
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", &api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "test")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "test")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().expect("spawn the function");
        FakeLambda {
            child,
            requests,
            early: Default::default(),
            events,
            started,
        }
    }

    /// The next request the function makes, within `timeout`.
    pub fn next_request(&self, timeout: Duration) -> Request {
        self.requests
            .recv_timeout(timeout)
            .expect("the function made no request to the Runtime API in time")
    }

    /// The first request, arrived or to come, that `wanted` accepts. The
    /// runtime may ask for the next event on another connection while it
    /// posts the previous answer, so arrival order is not request order.
    fn wait_for(&self, wanted: impl Fn(&Request) -> bool, timeout: Duration) -> Request {
        let mut early = self.early.borrow_mut();
        if let Some(position) = early.iter().position(&wanted) {
            return early.remove(position).expect("position is in range");
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let request = self
                .requests
                .recv_timeout(left)
                .expect("the function did not make the expected request in time");
            if wanted(&request) {
                return request;
            }
            early.push_back(request);
        }
    }

    /// Hand the function one event; returns what it posted back.
    pub fn invoke(&self, event: &serde_json::Value) -> Request {
        self.wait_for(
            |r| r.path.ends_with("/invocation/next"),
            Duration::from_secs(30),
        );
        self.events.send(event.to_string()).expect("server thread");
        self.wait_for(
            |r| r.path.ends_with("/response") || r.path.ends_with("/error"),
            Duration::from_secs(60),
        )
    }

    /// Stop the function; its stdout and stderr.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let output =
            std::mem::replace(&mut self.child, Command::new("true").spawn().expect("true"))
                .wait_with_output()
                .expect("output");
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    }
}

impl Drop for FakeLambda {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(
    stream: TcpStream,
    requests: mpsc::Sender<Request>,
    events: Arc<Mutex<mpsc::Receiver<String>>>,
    ids: Arc<AtomicU32>,
) {
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        let is_next = request.path.ends_with("/invocation/next");
        let _ = requests.send(request);
        let reply = if is_next {
            let Some(event) = events.lock().ok().and_then(|rx| rx.recv().ok()) else {
                return;
            };
            let id = ids.fetch_add(1, Ordering::SeqCst) + 1;
            let deadline = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                + Duration::from_secs(300);
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: req-{id}\r\n\
                 Lambda-Runtime-Deadline-Ms: {}\r\nLambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:eu-west-1:123456789012:function:test\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000\r\nContent-Length: {}\r\n\r\n{event}",
                deadline.as_millis(),
                event.len()
            )
        } else {
            "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
                .to_string()
        };
        if writer.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}
