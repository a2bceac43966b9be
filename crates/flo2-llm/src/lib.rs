//! flo2's knowledge of LLM providers: the model catalog (and, as the gateway grows, wire formats,
//! translators and the upstream client).

pub mod catalog;
