//! Unit tests of the exit handlers with a scripted vCPU (no KVM).
