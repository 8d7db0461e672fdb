//! What the machine does to us, done for real: a disk that fills up.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// A tmpfs of `megabytes` mounted at `path` for the test's life (needs root,
/// which CI has).
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(path: &Path, megabytes: u32) -> Self {
        std::fs::create_dir_all(path).unwrap();
        let size = format!("size={megabytes}m,mode=0700");
        let status = Command::new("mount").args(["-t", "tmpfs", "-o", &size, "tmpfs"]).arg(path).status();
        assert!(
            status.is_ok_and(|s| s.success()),
            "mounting a tmpfs failed: this test fills a real (small) disk and needs root, as CI has"
        );
        Self(path.to_owned())
    }

    /// Writes a filler file until the disk refuses more.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while file.write_all(&chunk).and_then(|()| file.sync_data()).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

async fn ready(http: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{http}/ready")).await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn update_status(http: &str, reg: &Value, txt: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{http}/update"))
        .header("X-Api-User", reg["username"].as_str().unwrap())
        .header("X-Api-Key", reg["password"].as_str().unwrap())
        .json(&serde_json::json!({ "subdomain": reg["subdomain"], "txt": txt }))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// A full disk: every write fails with a JSON 503 (`store_unavailable`) and `/ready` turns
/// 503 naming the store's writes (reads still work, so a read check alone would
/// say "ok"); once space is freed both recover on their own.
#[tokio::test]
async fn a_full_disk_is_reported_and_survived() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let disk = SmallDisk::mount(&data, 16);
    let data_arg = data.display().to_string();
    let args = serve_on_loopback(&["--data-dir", &data_arg]);
    let server = Certdns::start(dir.path(), &args, &[]).await;
    let http = server.http_url();
    let reg = register(&server.first_start_base_url().unwrap()).await;
    assert_eq!(update_status(&http, &reg, &valid_txt('a')).await.0, 200);
    assert_eq!(ready(&http).await.0, 200);

    let filler = disk.fill();
    let mut refused = 0;
    for (i, c) in "bcdefghijk".chars().enumerate() {
        let (status, body) = update_status(&http, &reg, &valid_txt(c)).await;
        match status {
            503 => {
                assert_eq!(body, r#"{"error": "store_unavailable"}"#);
                refused += 1;
            }
            200 => assert!(i < 3, "writes keep succeeding on a full disk"),
            other => panic!("{other}: {body}"),
        }
    }
    assert!(refused >= 7, "{refused} of 10 writes refused");
    tokio::time::sleep(Duration::from_millis(2100)).await; // past the probe's cache
    let (status, body) = ready(&http).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["checks"]["store"], "writes failing", "{body}");

    std::fs::remove_file(filler).unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(ready(&http).await.0, 200);
    assert_eq!(update_status(&http, &reg, &valid_txt('z')).await.0, 200);
    server.stop().await;
    drop(disk);
}
