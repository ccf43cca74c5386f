fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Use a vendored protoc unless the environment provides one: nothing to install by hand.
    if std::env::var_os("PROTOC").is_none() {
        std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    }
    println!("cargo:rerun-if-changed=../proto/peer.proto");
    tonic_prost_build::configure().compile_protos(&["../proto/peer.proto"], &["../proto"])?;
    Ok(())
}
