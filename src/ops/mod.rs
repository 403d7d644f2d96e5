//! Running the service: health checks and the `doctor` diagnosis. Maintenance windows,
//! upgrades and notifications arrive later.

pub mod doctor;
pub mod doctor_tls;
pub mod service;
