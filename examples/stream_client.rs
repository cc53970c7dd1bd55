//! Load client of the service benchmark (issue 3): sends an NDJSON file as `POST /v1/orders`
//! over N concurrent HTTP/1.1 streams (chunked, ~64 KiB chunks) and reads the streamed
//! answers at the same time, one writer and one reader thread per connection.
//!
//! ```sh
//! stream_client --target http://127.0.0.1:PORT --file orders.ndjson --streams N [--dump DIR]
//! ```
//!
//! The file is read into memory and cut into N contiguous parts at line boundaries; stream i
//! sends part i. Answer lines are the `\n`s of the decoded (de-chunked) response bodies. It
//! prints lines sent, answer lines received, wall seconds from the first byte sent to the
//! last answer byte received, and orders per second; it exits non-zero if any stream fails
//! or the answers do not match the lines sent. `--dump DIR` writes each stream's decoded
//! answers to `DIR/answers-<i>.ndjson`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Body bytes per HTTP chunk.
const CHUNK: usize = 64 * 1024;

struct Options {
    target: SocketAddr,
    host: String,
    file: PathBuf,
    streams: usize,
    dump: Option<PathBuf>,
}

/// Sends an NDJSON file of orders over N chunked HTTP streams and counts the answers.
#[derive(clap::Parser)]
struct Cli {
    /// The server, `http://HOST:PORT`.
    #[arg(long)]
    target: String,
    /// The NDJSON orders to send.
    #[arg(long)]
    file: PathBuf,
    /// Concurrent streams, each sending a contiguous part of the file.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    streams: u64,
    /// Write each stream's decoded answers to `DIR/answers-<i>.ndjson`.
    #[arg(long)]
    dump: Option<PathBuf>,
}

fn options() -> Options {
    let cli = <Cli as clap::Parser>::parse();
    let host = cli
        .target
        .strip_prefix("http://")
        .unwrap_or(&cli.target)
        .trim_end_matches('/')
        .to_string();
    let address = host
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .unwrap_or_else(|| {
            eprintln!("stream_client: cannot resolve {host:?}");
            std::process::exit(2)
        });
    Options {
        target: address,
        host,
        file: cli.file,
        streams: cli.streams as usize,
        dump: cli.dump,
    }
}

/// Cuts `data` into `parts` contiguous pieces, each ending just after a `\n` (the last one
/// at the end of the data).
fn split_at_lines(data: &[u8], parts: usize) -> Vec<&[u8]> {
    let mut pieces = Vec::with_capacity(parts);
    let mut start = 0;
    for part in 1..=parts {
        let mut end = if part == parts {
            data.len()
        } else {
            (data.len() * part / parts).max(start)
        };
        if part < parts {
            end = match memchr::memchr(b'\n', &data[end..]) {
                Some(offset) => end + offset + 1,
                None => data.len(),
            };
        }
        pieces.push(&data[start..end]);
        start = end;
    }
    pieces
}

/// Lines in a piece: its `\n`s, plus a last line without one.
fn count_lines(piece: &[u8]) -> u64 {
    let newlines = count_newlines(piece);
    newlines + u64::from(!piece.is_empty() && piece.last() != Some(&b'\n'))
}

fn count_newlines(bytes: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', bytes).count() as u64
}

/// What one stream's reader saw.
struct Received {
    answers: u64,
    body_bytes: u64,
    last_byte: Instant,
}

fn main() -> ExitCode {
    let options = options();
    let data = match std::fs::read(&options.file) {
        Ok(data) => data,
        Err(problem) => {
            eprintln!(
                "stream_client: reading {}: {problem}",
                options.file.display()
            );
            return ExitCode::from(2);
        }
    };
    let pieces = split_at_lines(&data, options.streams);
    let sent_lines: Vec<u64> = pieces.iter().map(|piece| count_lines(piece)).collect();
    let total_sent: u64 = sent_lines.iter().sum();

    // Connect every stream first, then start them all together.
    let mut connections = Vec::with_capacity(options.streams);
    for _ in 0..options.streams {
        match TcpStream::connect(options.target) {
            Ok(stream) => {
                stream.set_nodelay(true).ok();
                connections.push(stream);
            }
            Err(problem) => {
                eprintln!("stream_client: connecting to {}: {problem}", options.target);
                return ExitCode::from(1);
            }
        }
    }
    let barrier = Arc::new(Barrier::new(options.streams + 1));
    let mut start = Instant::now();
    let (failures, received) = std::thread::scope(|scope| {
        let mut readers = Vec::new();
        let mut writers = Vec::new();
        for (index, (stream, piece)) in connections.into_iter().zip(&pieces).enumerate() {
            let reading = stream.try_clone().expect("cloning a TCP stream");
            let barrier_w = barrier.clone();
            let host = options.host.as_str();
            writers.push(scope.spawn(move || {
                barrier_w.wait();
                send(stream, host, piece)
                    .map_err(|problem| format!("stream {index} send: {problem}"))
            }));
            let dump = options
                .dump
                .as_ref()
                .map(|dir| dir.join(format!("answers-{index}.ndjson")));
            readers.push(scope.spawn(move || {
                receive(reading, dump)
                    .map_err(|problem| format!("stream {index} receive: {problem}"))
            }));
        }
        start = Instant::now();
        barrier.wait();
        let mut failures = Vec::new();
        for writer in writers {
            if let Err(problem) = writer.join().expect("writer thread") {
                failures.push(problem);
            }
        }
        let mut received = Vec::new();
        for reader in readers {
            match reader.join().expect("reader thread") {
                Ok(got) => received.push(Some(got)),
                Err(problem) => {
                    failures.push(problem);
                    received.push(None);
                }
            }
        }
        (failures, received)
    });

    let mut total_answers = 0u64;
    let mut last = start;
    for (index, got) in received.iter().enumerate() {
        match got {
            Some(got) => {
                total_answers += got.answers;
                last = last.max(got.last_byte);
                let seconds = got.last_byte.duration_since(start).as_secs_f64();
                eprintln!(
                    "stream {index}: sent {} lines, {} answer lines ({} bytes), last answer at {seconds:.3} s",
                    sent_lines[index], got.answers, got.body_bytes
                );
            }
            None => eprintln!("stream {index}: sent {} lines, failed", sent_lines[index]),
        }
    }
    let wall = last.duration_since(start).as_secs_f64();
    let rate = if wall > 0.0 {
        total_answers as f64 / wall
    } else {
        0.0
    };
    println!("streams {}", options.streams);
    println!("lines sent {total_sent}");
    println!("answers received {total_answers}");
    println!("wall seconds {wall:.3}");
    println!("orders/s {rate:.0}");
    for problem in &failures {
        eprintln!("stream_client: FAILED: {problem}");
    }
    if !failures.is_empty() {
        return ExitCode::from(1);
    }
    if total_answers != total_sent {
        eprintln!(
            "stream_client: FAILED: {total_answers} answer lines for {total_sent} lines sent"
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

/// Sends one request: headers, then the piece in ~64 KiB chunks, then the last chunk.
fn send(mut stream: TcpStream, host: &str, piece: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "POST /v1/orders HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let mut frame = Vec::with_capacity(CHUNK + 32);
    frame.extend_from_slice(head.as_bytes());
    for chunk in piece.chunks(CHUNK) {
        write!(frame, "{:x}\r\n", chunk.len())?;
        frame.extend_from_slice(chunk);
        frame.extend_from_slice(b"\r\n");
        stream.write_all(&frame)?;
        frame.clear();
    }
    frame.extend_from_slice(b"0\r\n\r\n");
    stream.write_all(&frame)?;
    stream.flush()
}

/// Reads one response: the status line and headers, then the body (chunked, or by
/// Content-Length, or to the end), counting `\n`s.
fn receive(stream: TcpStream, dump: Option<PathBuf>) -> Result<Received, String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .map_err(|problem| problem.to_string())?;
    let mut reader = BufReader::with_capacity(256 * 1024, stream);
    let mut dump = match dump {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(&path)
                .map_err(|problem| format!("{}: {problem}", path.display()))?,
        )),
        None => None,
    };
    let io = |problem: std::io::Error| problem.to_string();
    let mut line = String::new();
    reader.read_line(&mut line).map_err(io)?;
    let status = line.trim_end().to_string();
    if !status.starts_with("HTTP/1.1 200") && !status.starts_with("HTTP/1.0 200") {
        let mut rest = String::new();
        let _ = reader.take(4096).read_to_string(&mut rest);
        return Err(format!("status {status:?}; {rest}"));
    }
    let (mut chunked, mut length) = (false, None::<u64>);
    loop {
        line.clear();
        if reader.read_line(&mut line).map_err(io)? == 0 {
            return Err("the connection closed inside the headers".into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(format!("bad header line {header:?}"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok();
        }
    }
    let mut got = Received {
        answers: 0,
        body_bytes: 0,
        last_byte: Instant::now(),
    };
    let mut buffer = vec![0u8; 256 * 1024];
    let mut take = |reader: &mut BufReader<TcpStream>, mut left: u64, got: &mut Received| {
        while left > 0 {
            let want = left.min(buffer.len() as u64) as usize;
            let read = reader.read(&mut buffer[..want]).map_err(io)?;
            if read == 0 {
                return Err(format!(
                    "the connection closed with {left} body bytes to come"
                ));
            }
            got.answers += count_newlines(&buffer[..read]);
            got.body_bytes += read as u64;
            got.last_byte = Instant::now();
            if let Some(dump) = dump.as_mut() {
                dump.write_all(&buffer[..read]).map_err(io)?;
            }
            left -= read as u64;
        }
        Ok::<(), String>(())
    };
    if chunked {
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(io)? == 0 {
                return Err("the connection closed before the last chunk".into());
            }
            let size_text = line.trim_end().split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size_text, 16)
                .map_err(|_| format!("bad chunk size line {:?}", line.trim_end()))?;
            if size == 0 {
                // Trailers, up to the empty line.
                loop {
                    line.clear();
                    if reader.read_line(&mut line).map_err(io)? == 0 || line.trim_end().is_empty() {
                        break;
                    }
                }
                break;
            }
            take(&mut reader, size, &mut got)?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf).map_err(io)?;
            if &crlf != b"\r\n" {
                return Err(format!("chunk not followed by CRLF: {crlf:?}"));
            }
        }
    } else if let Some(length) = length {
        take(&mut reader, length, &mut got)?;
    } else {
        // Delimited by the end of the connection.
        take(&mut reader, u64::MAX, &mut got).or_else(|problem| {
            if problem.starts_with("the connection closed") {
                Ok(())
            } else {
                Err(problem)
            }
        })?;
    }
    if let Some(dump) = dump.as_mut() {
        dump.flush().map_err(io)?;
    }
    Ok(got)
}
