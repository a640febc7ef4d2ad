// Link every user program at 0x400000 with our linker script (a static,
// fixed-address ELF executable, as `gcc -static -no-pie` makes).
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    println!("cargo:rustc-link-arg-bins=-T{dir}/user.ld");
    println!("cargo:rerun-if-changed=user.ld");
}
