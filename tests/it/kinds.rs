//! Node and Rust plugins: lock, build, clean and release with npm and cargo, end to end from
//! the `nodejs` and `rust` templates.

use crate::support::{member_paths, require_command, stderr, TestContext};

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An npm registry on 127.0.0.1 serving one package, `is-number@7.0.0`: its package document
/// and its tarball (written by the test, as `npm pack` lays it out), so that no test reaches
/// the network. It stops when dropped.
struct Registry {
    url: String,
    server: std::sync::Arc<tiny_http::Server>,
    thread: Option<std::thread::JoinHandle<()>>,
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Registry {
    fn start() -> Registry {
        let server =
            std::sync::Arc::new(tiny_http::Server::http("127.0.0.1:0").expect("bind 127.0.0.1"));
        let port = server.server_addr().to_ip().expect("ip").port();
        let url = format!("http://127.0.0.1:{port}/");
        let tarball = {
            let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
                Vec::new(),
                flate2::Compression::fast(),
            ));
            let files = [
                (
                    "package/package.json",
                    "{\"name\": \"is-number\", \"version\": \"7.0.0\", \"main\": \"index.js\"}\n",
                ),
                (
                    "package/index.js",
                    "module.exports = n => typeof n === 'number' && n - n === 0;\n",
                ),
            ];
            for (path, text) in files {
                let mut header = tar::Header::new_gnu();
                header.set_size(text.len() as u64);
                header.set_mode(0o644);
                header.set_mtime(499_162_500);
                header.set_cksum();
                tar.append_data(&mut header, path, text.as_bytes()).unwrap();
            }
            tar.into_inner().unwrap().finish().unwrap()
        };
        let integrity = format!(
            "sha512-{}",
            base64(&<sha2::Sha512 as sha2::Digest>::digest(&tarball))
        );
        let tarball_url = format!("{url}is-number/-/is-number-7.0.0.tgz");
        let document = serde_json::json!({
            "name": "is-number",
            "dist-tags": {"latest": "7.0.0"},
            "versions": {"7.0.0": {
                "name": "is-number",
                "version": "7.0.0",
                "main": "index.js",
                "dist": {"tarball": tarball_url, "integrity": integrity},
            }},
        })
        .to_string();
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let thread = {
            let server = std::sync::Arc::clone(&server);
            let requests = std::sync::Arc::clone(&requests);
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let path = request.url().to_owned();
                    requests.lock().unwrap().push(path.clone());
                    let (status, kind, body) = match path.as_str() {
                        "/is-number" => (200, "application/json", document.clone().into_bytes()),
                        "/is-number/-/is-number-7.0.0.tgz" => {
                            (200, "application/octet-stream", tarball.clone())
                        }
                        _ => (
                            404,
                            "application/json",
                            b"{\"error\":\"not found\"}".to_vec(),
                        ),
                    };
                    let header =
                        tiny_http::Header::from_bytes(&b"Content-Type"[..], kind.as_bytes())
                            .unwrap();
                    let response = tiny_http::Response::from_data(body)
                        .with_status_code(status)
                        .with_header(header);
                    let _ = request.respond(response);
                }
            })
        };
        Registry {
            url,
            server,
            thread: Some(thread),
            requests,
        }
    }

    /// npm's settings for this registry, and a cache of the test's own.
    fn env(&self, ctx: &TestContext) -> Vec<(&'static str, std::ffi::OsString)> {
        vec![
            ("npm_config_registry", self.url.clone().into()),
            ("npm_config_cache", ctx.root().join("npm-cache").into()),
            ("npm_config_update_notifier", "false".into()),
            ("npm_config_fetch_retries", "0".into()),
        ]
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn node_plugin_lock_build_clean_release() {
    require_command("npm", &["--version"], "apt-get install nodejs npm");
    require_command("node", &["--version"], "apt-get install nodejs npm");
    let ctx = TestContext::new();
    ctx.cmd(["bootstrap", "create", "-t", "nodejs", "n"])
        .assert()
        .success();
    // A local dependency: npm installs it with no registry.
    ctx.write(
        "n/localdep/package.json",
        "{\"name\": \"localdep\", \"version\": \"1.0.0\", \"main\": \"index.js\"}\n",
    );
    ctx.write("n/localdep/index.js", "module.exports = 42;\n");
    let manifest = ctx.read("n/package.json");
    let mut json: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    json["dependencies"] = serde_json::json!({"localdep": "file:./localdep"});
    ctx.write(
        "n/package.json",
        &serde_json::to_string_pretty(&json).unwrap(),
    );

    let out = ctx.cmd(["lock", "--check", "n"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("`package-lock.json` is stale: `package-lock.json` is missing"),
        "{}",
        stderr(&out)
    );
    let out = ctx.cmd(["lock", "n"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    ctx.cmd(["lock", "--check", "n"]).assert().success();

    let out = ctx.cmd(["build", "n", "--offline"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ctx.work.join("n/node_modules/localdep").exists());
    let out = ctx.cmd(["build", "n", "--offline"]).output().unwrap();
    assert!(stderr(&out).contains("nothing to do"), "{}", stderr(&out));

    // The env finds the modules through NODE_PATH.
    std::fs::create_dir_all(ctx.home.join("plugins")).unwrap();
    std::os::unix::fs::symlink(ctx.work.join("n"), ctx.home.join("plugins/n")).unwrap();
    let out = ctx
        .cmd([
            "wrapper",
            "n",
            "--",
            "node",
            "-e",
            "console.log(require('localdep'))",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "42",
        "{}",
        stderr(&out)
    );

    // The release ships node_modules.
    ctx.cmd(["-q", "release", "n", "-o", "dist"])
        .assert()
        .success();
    let paths = member_paths(&ctx.work.join("dist/n-0.0.1-1.plugin"));
    assert!(
        paths.iter().any(|p| p.starts_with("node_modules/")),
        "{paths:?}"
    );

    // What npm left in `node_modules/` is not trusted: a copy of the lock that is not an
    // object is only "not the same lock" (it aborted the build before).
    ctx.write("n/node_modules/.package-lock.json", "[1, 2]\n");
    let out = ctx.cmd(["build", "n", "--offline"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ctx.work.join("n/node_modules/localdep").exists());

    ctx.cmd(["clean", "n"]).assert().success();
    assert!(!ctx.work.join("n/node_modules").exists());
    assert!(ctx.work.join("n/package-lock.json").exists());
    ctx.cmd(["clean", "--super", "n"]).assert().success();
    assert!(!ctx.work.join("n/package-lock.json").exists());
    assert!(ctx.work.join("n/main.js").exists());

    // Without npm: a clear error that says what to install.
    let out = ctx
        .cmd(["build", "n"])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`npm` is not installed"),
        "{}",
        stderr(&out)
    );
}

/// A registry dependency, from a registry the test serves on 127.0.0.1: locked with its
/// `resolved` URL and integrity, installed by `npm ci`, found by the plugin's env; then
/// `build --offline` installs it again from npm's cache without asking the registry (and fails
/// with an empty cache).
#[test]
fn node_plugin_with_a_registry_dependency() {
    require_command("npm", &["--version"], "apt-get install nodejs npm");
    require_command("node", &["--version"], "apt-get install nodejs npm");
    let ctx = TestContext::new();
    let registry = Registry::start();
    ctx.cmd(["bootstrap", "create", "-t", "nodejs", "n"])
        .assert()
        .success();
    let mut json: serde_json::Value = serde_json::from_str(&ctx.read("n/package.json")).unwrap();
    json["dependencies"] = serde_json::json!({"is-number": "7.0.0"});
    ctx.write(
        "n/package.json",
        &serde_json::to_string_pretty(&json).unwrap(),
    );
    let env = registry.env(&ctx);
    let out = ctx.cmd(["build", "n"]).envs(env.clone()).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ctx
        .work
        .join("n/node_modules/is-number/package.json")
        .is_file());
    let lock = ctx.read("n/package-lock.json");
    assert!(
        lock.contains(&format!("{}is-number/-/is-number-7.0.0.tgz", registry.url)),
        "{lock}"
    );
    assert!(lock.contains("\"integrity\": \"sha512-"), "{lock}");
    let requests = registry.requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .any(|r| r == "/is-number/-/is-number-7.0.0.tgz"),
        "{requests:?}"
    );

    std::fs::create_dir_all(ctx.home.join("plugins")).unwrap();
    std::os::unix::fs::symlink(ctx.work.join("n"), ctx.home.join("plugins/n")).unwrap();
    let check = [
        "wrapper",
        "n",
        "--",
        "node",
        "-e",
        "console.log(require('is-number')(5), require('is-number')('x'))",
    ];
    let out = ctx.cmd(check).output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "true false",
        "{}",
        stderr(&out)
    );

    // Offline, npm's cache is enough and the registry is never asked, though it still
    // answers: with an empty cache the build fails, asking nothing; with the cache of the
    // first build it succeeds, asking nothing.
    ctx.cmd(["clean", "n"]).assert().success();
    assert!(!ctx.work.join("n/node_modules").exists());
    let asked = registry.requests.lock().unwrap().len();
    let empty_cache: Vec<(&str, std::ffi::OsString)> = env
        .iter()
        .map(|(k, v)| match *k {
            "npm_config_cache" => (*k, ctx.root().join("empty-npm-cache").into()),
            _ => (*k, v.clone()),
        })
        .collect();
    let out = ctx
        .cmd(["build", "n", "--offline"])
        .envs(empty_cache)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!ctx.work.join("n/node_modules/is-number").exists());
    let out = ctx
        .cmd(["build", "n", "--offline"])
        .envs(env)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let requests = registry.requests.lock().unwrap().clone();
    assert_eq!(
        requests.len(),
        asked,
        "offline builds asked the registry: {requests:?}"
    );
    let out = ctx.cmd(check).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "true false");
}

#[test]
fn rust_plugin_builds_offline_into_bin_and_releases_without_target() {
    let ctx = TestContext::new();
    ctx.cmd(["bootstrap", "create", "-t", "rust", "r"])
        .assert()
        .success();
    let out = ctx.cmd(["lock", "r", "--offline"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ctx.work.join("r/Cargo.lock").is_file());
    ctx.cmd(["lock", "--check", "r"]).assert().success();
    let out = ctx.cmd(["build", "r", "--offline"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(ctx.work.join("r/bin/r").is_file());

    std::fs::create_dir_all(ctx.home.join("plugins")).unwrap();
    std::os::unix::fs::symlink(ctx.work.join("r"), ctx.home.join("plugins/r")).unwrap();
    let out = ctx.cmd(["wrapper", "r", "--", "r"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains('r'));

    ctx.cmd(["-q", "release", "r", "-o", "dist"])
        .assert()
        .success();
    let paths = member_paths(&ctx.work.join("dist/r-0.0.1-1.plugin"));
    assert!(paths.contains(&"bin/r".to_owned()), "{paths:?}");
    assert!(!paths.iter().any(|p| p.starts_with("target/")), "{paths:?}");

    // A manifest that no longer fits the lock is reported by `lock --check`.
    let manifest = ctx.read("r/Cargo.toml");
    ctx.write(
        "r/Cargo.toml",
        &manifest.replace(
            "[dependencies]",
            "[dependencies]\nmissing-crate-xyz = \"1\"",
        ),
    );
    let out = ctx.cmd(["lock", "--check", "r"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("`Cargo.lock` is stale"),
        "{}",
        stderr(&out)
    );
    ctx.write("r/Cargo.toml", &manifest);

    ctx.cmd(["clean", "r"]).assert().success();
    assert!(!ctx.work.join("r/target").exists());
    assert!(ctx.work.join("r/bin/r").exists(), "clean keeps bin/");
}

/// A crate vendored in the plugin (a directory source, as `cargo vendor` writes it, pointed at
/// by `.cargo/config.toml`): `lock` and `build --offline` work from the plugin dir alone.
#[test]
fn rust_plugin_with_a_vendored_dependency_builds_offline() {
    let ctx = TestContext::new();
    ctx.cmd(["bootstrap", "create", "-t", "rust", "r"])
        .assert()
        .success();
    ctx.write(
        "r/rust_vendor/helper/Cargo.toml",
        "[package]\nname = \"helper\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    ctx.write(
        "r/rust_vendor/helper/src/lib.rs",
        "pub fn answer() -> u32 { 42 }\n",
    );
    ctx.write(
        "r/rust_vendor/helper/.cargo-checksum.json",
        &format!("{{\"files\":{{}},\"package\":\"{}\"}}", "0".repeat(64)),
    );
    ctx.write(
        "r/.cargo/config.toml",
        "[source.crates-io]\nreplace-with = \"vendored-sources\"\n\n[source.vendored-sources]\ndirectory = \"rust_vendor\"\n",
    );
    let manifest = ctx.read("r/Cargo.toml");
    ctx.write(
        "r/Cargo.toml",
        &manifest.replace("[dependencies]", "[dependencies]\nhelper = \"0.1\""),
    );
    ctx.write(
        "r/src/main.rs",
        "fn main() {\n    println!(\"answer {}\", helper::answer());\n}\n",
    );
    let out = ctx.cmd(["lock", "r", "--offline"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = ctx.cmd(["build", "r", "--offline"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let out = std::process::Command::new(ctx.work.join("r/bin/r"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "answer 42");
}
