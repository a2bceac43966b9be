//! Whole bodies with limits: a size cap ([`capped`]) and an idle limit between frames
//! ([`idle`]). Shared by the inbound edge (the caller's request) and the upstream exchange (the
//! provider's answer); depends on nothing else in the crate.

pub(crate) mod capped;
pub(crate) mod idle;
