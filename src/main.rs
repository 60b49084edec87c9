use std::process::ExitCode;

mod cli;

fn main() -> ExitCode {
    // The OpenSSL built into the binary looks for the system's CA certificates where its own
    // build put them (/usr/local/ssl): unless SSL_CERT_FILE or SSL_CERT_DIR says where, point it
    // at this system's, for libpq's `sslrootcert=system`. Safe: no other thread runs yet.
    if !openssl_probe::has_ssl_cert_env_vars() {
        unsafe { openssl_probe::try_init_openssl_env_vars() };
    }
    cli::main()
}
