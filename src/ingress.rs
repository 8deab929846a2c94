//! placeholder: the ingress routing module (helper writes it)
