//! Debian's static busybox (`images/busybox/build.sh`, which ci/setup.sh
//! prepares) running shell scripts in the guest: each script prints the
//! same as the same busybox running it on the host over the same files.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::Once;

use common::vkernel;

/// Builds target/images/busybox.cpio once per test binary.
fn image() -> &'static str {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../images/busybox/build.sh");
        let out = Command::new("bash")
            .arg(script)
            .output()
            .expect("running build.sh");
        assert!(
            out.status.success(),
            "images/busybox/build.sh: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    concat!(env!("CARGO_MANIFEST_DIR"), "/../target/images/busybox.cpio")
}

/// Runs `script` with busybox sh on the host (in a fresh directory) and in
/// the guest (in a fresh /tmp/work); both must print the same and succeed.
fn same_as_host(script: &str) -> String {
    // The host runs the busybox the image holds: build it first.
    let image = image();
    let dir = tempfile::tempdir().unwrap();
    let host = Command::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/images/busybox/bin/busybox"
    ))
    .args(["sh", "-c", script])
    .current_dir(dir.path())
    .env_clear()
    .env("PATH", "/usr/bin:/bin")
    .output()
    .expect("host busybox");
    let host_out = String::from_utf8_lossy(&host.stdout).into_owned();
    assert!(
        host.status.success(),
        "on the host: {host_out}{}",
        String::from_utf8_lossy(&host.stderr)
    );
    let guest_script = format!("mkdir -p /tmp/work && cd /tmp/work && {{ {script}\n}}");
    let r = vkernel(&["run", "--image", image, "--", "sh", "-c", &guest_script]);
    r.expect_code(0);
    assert_eq!(
        r.stdout, host_out,
        "guest and host differ; guest stderr:\n{}",
        r.stderr
    );
    r.stdout
}

#[test]
fn files_and_text_tools_match_the_host() {
    let out = same_as_host(
        r#"set -e
mkdir -p a/b/c
printf 'one\ntwo\nthree\ntwo\n' > a/f1
seq 1 200 > a/b/nums
echo hello > a/b/c/deep
ls a
cat a/f1
sort a/f1 | uniq
sort a/f1 | uniq -c | sed 's/^ *//'
wc -l < a/b/nums
head -3 a/b/nums
tail -2 a/b/nums
tr a-z A-Z < a/f1
awk '{ s += $1 } END { print s }' a/b/nums
grep -r hello a
find a | sort
cp -r a copy
find copy | sort
mv copy moved
ls
md5sum a/f1 a/b/nums
echo a b c | xargs -n1 echo
echo teed | tee a/teed > /dev/null
cat a/teed
sed -n '2p;4p' a/f1
cut -c1-2 a/f1
rm -r moved
ls
"#,
    );
    assert!(out.contains("20100"), "{out}");
}

#[test]
fn archives_through_pipes_match_the_host() {
    same_as_host(
        r#"set -e
mkdir -p src/sub
seq 1 5000 > src/big
printf 'x%.0s' $(seq 1 100) > src/sub/small
ln -s big src/link
tar cf - src | (mkdir out && cd out && tar xf -)
find out | sort
cmp src/big out/src/big && echo same
readlink out/src/link
gzip -c src/big > big.gz
gunzip -c big.gz | md5sum
ls -l big.gz | awk '{ print $5 > "/dev/null"; print "gz ok" }'
cat src/big | wc -c
"#,
    );
}

#[test]
fn shell_features_match_the_host() {
    same_as_host(
        r#"x=$(echo sub | tr a-z A-Z); echo "$x"
for i in 1 2 3; do echo "loop $i"; done
( cd / && pwd ); pwd | sed 's|.*/||' > /dev/null
f() { echo "func $1"; return 3; }; f arg || echo "status $?"
echo $((6 * 7))
case abc in a*) echo matched;; esac
sh -c 'exit 4'; echo "child $?"
false || echo "or works"
"#,
    );
}

#[test]
fn a_writer_whose_host_reader_went_away_dies_of_sigpipe() {
    use std::io::Read;
    use std::process::Stdio;
    // `vkernel run -- yes | head -c 4`: once the reader is gone the guest's
    // write gets EPIPE and SIGPIPE, as natively (status 128 + 13).
    let mut child = Command::new(env!("CARGO_BIN_EXE_vkernel"))
        .args(["run", "--image", image(), "--", "yes"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = [0u8; 4];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    // The pipe's read end is dropped here.
    let status = child.wait().unwrap();
    assert_eq!(&first, b"y\ny\n");
    assert_eq!(status.code(), Some(141), "{status:?}");
}

#[test]
fn traps_waits_background_jobs_and_timeout_match_the_host() {
    same_as_host(
        r#"trap 'echo bye' EXIT INT
sleep 5 & p=$!
kill %1; wait $p; echo "killed $?"
sleep 0.1 & sleep 0.2 & wait; echo "waited $?"
( trap 'echo got USR1; exit 3' USR1; while :; do sleep 0.05; done ) & c=$!
sleep 0.3; kill -USR1 $c; wait $c; echo "sub $?"
timeout 1 sleep 5; echo "timeout $?"
timeout -s INT 1 sleep 5; echo "timeout int $?"
timeout 2 sh -c 'echo quick'; echo "in time $?"
sh -c 'trap "echo int caught; exit 7" INT; kill -INT $$; echo not here'; echo "trap $?"
sh -c 'trap "echo in exit trap" EXIT; exit 5'; echo "exit trap $?"
sleep 3 & sleep 3 & jobs > j; sed 's/ \+/ /g' j; kill %1 %2; wait; echo "both $?"
(sleep 0.2; echo late) | cat & wait; echo "pipeline bg $?"
kill -INT $$; echo "after INT trap"
"#,
    );
}
