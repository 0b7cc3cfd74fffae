"""Target runners: one wire protocol (protocol.py) to QEMU, Renode and real boards; see base.Target."""
