//! placeholder: the TLS module (helper writes it)
