//! The real `order-router serve` binary on a free loopback port, and a small HTTP/1.1 client
//! on plain sockets (so a test can stream a request body and read answers before it ends).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running server; killed on drop.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Server {
    /// Starts `serve` on `config`, `catalog` and `stock` (file contents), with `extra` flags.
    pub fn start(config: &str, catalog: &str, stock: &str, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| -> PathBuf {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let config = write("router.toml", config);
        let catalog = write("catalog.csv", catalog);
        let stock = write("stock.csv", stock);
        Server::start_files(dir, &config, &catalog, &stock, extra)
    }

    pub fn start_files(
        dir: tempfile::TempDir,
        config: &Path,
        catalog: &Path,
        stock: &Path,
        extra: &[&str],
    ) -> Server {
        let mut child = serve_command(&dir.path().join("data"), config, catalog, stock)
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the binary starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .rsplit("http://")
            .next()
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        Server {
            child: Some(child),
            addr,
            dir,
        }
    }

    /// `serve` on this server's data dir and the files `start` wrote, on a free port, not
    /// started: for a second process on the same directory.
    pub fn command_on_same_files(&self) -> Command {
        let path = |name: &str| self.dir.path().join(name);
        serve_command(
            &path("data"),
            &path("router.toml"),
            &path("catalog.csv"),
            &path("stock.csv"),
        )
    }

    /// Kills the server with SIGKILL (no drain, no flush: a crash) and starts it again on
    /// the same data dir and files (those `start` wrote), with `extra` flags.
    pub fn kill_and_restart(self, extra: &[&str]) -> Server {
        self.kill_change_restart(extra, |_| {})
    }

    /// [`Server::kill_and_restart`], with `change` made to the data dir in between (what a
    /// crash of the machine would have left, say).
    pub fn kill_change_restart(self, extra: &[&str], change: impl FnOnce(&Path)) -> Server {
        let mut this = self;
        if let Some(mut child) = this.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        change(&this.dir.path().join("data"));
        let dir = std::mem::replace(&mut this.dir, tempfile::tempdir().unwrap());
        let path = |name: &str| dir.path().join(name);
        let (config, catalog, stock) =
            (path("router.toml"), path("catalog.csv"), path("stock.csv"));
        Server::start_files(dir, &config, &catalog, &stock, extra)
    }

    /// One request on a new connection (`Connection: close`).
    pub fn request(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Response {
        self.request_with(method, path, &[("Content-Type", content_type)], body)
    }

    pub fn request_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut stream = self.connect();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(body).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        Response::parse(&raw)
    }

    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, "text/plain", b"")
    }

    /// The value of the metric series `series` (name and labels, as exposed), 0 while
    /// absent.
    pub fn metric(&self, series: &str) -> f64 {
        let metrics = self.get("/metrics").text().to_owned();
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    pub fn post_json(&self, path: &str, body: &str) -> Response {
        self.request("POST", path, "application/json", body.as_bytes())
    }

    /// Streams `body` as NDJSON in one request; the whole answer.
    pub fn post_ndjson(&self, body: &str) -> Response {
        self.request(
            "POST",
            "/v1/orders",
            "application/x-ndjson",
            body.as_bytes(),
        )
    }

    pub fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        stream
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// Sends `signal` (`libc::SIGTERM`, `libc::SIGHUP`, ...) to the server.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid, which is alive until we wait for it.
        let sent = unsafe { libc::kill(self.pid() as i32, signal) };
        assert_eq!(sent, 0, "kill({}, {signal})", self.pid());
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        self.terminate_wait()
    }

    /// Waits for the process to exit (after a signal sent elsewhere).
    pub fn terminate_wait(&mut self) -> std::process::ExitStatus {
        self.child.take().unwrap().wait().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `order-router serve` on a free loopback port with these files.
fn serve_command(data: &Path, config: &Path, catalog: &Path, stock: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_order-router"));
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .arg("--config")
        .arg(config)
        .arg("--catalog")
        .arg(catalog)
        .arg("--stock")
        .arg(stock);
    command
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn parse(raw: &[u8]) -> Response {
        let end = raw
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
        let head = std::str::from_utf8(&raw[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        let rest = &raw[end + 4..];
        let chunked = headers
            .iter()
            .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"));
        let body = if chunked {
            dechunk(rest)
        } else {
            rest.to_vec()
        };
        Response {
            status,
            headers,
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The body as NDJSON lines.
    pub fn lines(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|error| panic!("{error}: {line}"))
            })
            .collect()
    }
}

/// Decodes a chunked body (as much of it as is there: a body cut off mid-chunk gives what
/// its chunks hold so far).
pub fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(line_end) = raw.windows(2).position(|window| window == b"\r\n") {
        let size_text = std::str::from_utf8(&raw[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        let end = (start + size).min(raw.len());
        body.extend_from_slice(&raw[start..end]);
        if start + size + 2 > raw.len() {
            break;
        }
        raw = &raw[start + size + 2..];
    }
    body
}

/// Writes `data` as one chunk of a chunked request body.
pub fn write_chunk(stream: &mut TcpStream, data: &[u8]) {
    write!(stream, "{:x}\r\n", data.len()).unwrap();
    stream.write_all(data).unwrap();
    stream.write_all(b"\r\n").unwrap();
    stream.flush().unwrap();
}

/// Units reserved per (warehouse, sku) by `decisions` (contract JSON), as the decisions'
/// shipments say: what `GET /v1/stock/{sku}` must report reserved when none is cancelled
/// or shipped.
pub fn placed<'a>(
    decisions: impl IntoIterator<Item = &'a serde_json::Value>,
) -> std::collections::HashMap<(String, String), u64> {
    let mut placed = std::collections::HashMap::new();
    for decision in decisions {
        for shipment in decision["shipments"].as_array().unwrap() {
            for line in shipment["lines"].as_array().unwrap() {
                *placed
                    .entry((
                        shipment["warehouse"].as_str().unwrap().to_owned(),
                        line["sku"].as_str().unwrap().to_owned(),
                    ))
                    .or_default() += line["qty"].as_u64().unwrap();
            }
        }
    }
    placed
}
