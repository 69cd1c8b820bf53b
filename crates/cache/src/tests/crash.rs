//! Crash test: a child process (this test binary, re-run on one test) is SIGKILLed while it
//! writes entries; the directory is then reopened and must serve nothing corrupt.

use super::*;

const CRASH_DIR_ENV: &str = "IMGFORGE_CACHE_CRASH_DIR";
const CRASH_CHUNKS: usize = 40;
/// The parent kills the child while it writes this entry, after this chunk (past the first
/// 256 KiB flush, so the temporary file holds part of the body).
const KILL_ENTRY: usize = 4;
const KILL_CHUNK: usize = 20;

fn crash_body(n: usize) -> Vec<u8> {
    body_for(n as u8, 600_000 + n * 1_000)
}

/// Not a test on its own: in the child (env var set) it writes entries slowly, forever.
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CRASH_DIR_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let s = build(&disk_only(Path::new(&dir), 1 << 30)).unwrap();
        for n in 0.. {
            let body = crash_body(n);
            let chunk = body.len().div_ceil(CRASH_CHUNKS);
            let mut mh = s
                .get_miss_handler(&key(n), &meta_with("crash"), &span())
                .await
                .unwrap();
            for (i, c) in body.chunks(chunk).enumerate() {
                mh.write_body(Bytes::copy_from_slice(c), false)
                    .await
                    .unwrap();
                println!("wrote {n} {i}");
                // From entry 4 on, slow enough that the kill surely lands mid-entry.
                let pause = if n >= KILL_ENTRY { 20 } else { 1 };
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            mh.finish().await.unwrap();
            println!("committed {n}");
        }
    });
}

#[test]
fn sigkill_mid_write_never_serves_a_corrupt_entry() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "tests::crash::crash_child_writer", "--nocapture"])
        .args(["--test-threads", "1"])
        .env(CRASH_DIR_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut committed = 0;
    let kill_at = format!("wrote {KILL_ENTRY} {KILL_CHUNK}");
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("committed ") {
            committed = n.parse::<usize>().unwrap() + 1;
        }
        if line == kill_at {
            break;
        }
    }
    assert_eq!(committed, KILL_ENTRY);
    // SIGKILL (std's `kill` on Unix) to our own child, which has not been reaped yet.
    child.kill().unwrap();
    child.wait().unwrap();
    let (_, temps) = files(dir.path());
    let partial = temps
        .iter()
        .any(|t| std::fs::metadata(t).unwrap().len() > 256 * 1024);
    assert!(partial, "a partly written body is on disk: {temps:?}");
    assert!(
        !temps.is_empty(),
        "the child was killed mid-write, leaving its temporary file"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = build(&disk_only(dir.path(), 1 << 30)).unwrap();
        for n in 0..committed + 3 {
            match get(s, &key(n)).await {
                Some((_, body)) => assert!(body == crash_body(n), "entry {n} corrupt"),
                None => assert!(n >= committed, "committed entry {n} lost"),
            }
        }
        assert!(s.wait_disk_index(Duration::from_secs(10)).await);
        let (entries, temps) = files(dir.path());
        assert!(temps.is_empty(), "leftover temporary files: {temps:?}");
        assert!(entries.len() >= committed);
        assert_eq!(s.stats().disk.corrupt, 0);
    });
}
