pub mod batch;
pub mod capture;
pub mod events;
