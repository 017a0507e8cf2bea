//! End-to-end test harness for PICE.
