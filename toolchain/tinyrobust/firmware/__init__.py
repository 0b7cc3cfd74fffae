"""The firmware side: C from templates (codegen), boards, the memory budget, host and cross builds,
export directories, and the kernel runner."""
