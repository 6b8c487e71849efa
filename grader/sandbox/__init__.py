"""The life and walls of every process grading starts: the supervisor that owns each process tree
(supervise.py), the pre-imported template kernels fork from (zygote.py), the kernel's launch into its own
namespaces, user, cgroup and file system (kernel_launcher.py, kernel_client.py) and the limits (limits.py).

May import: the standard library only (supervise.py, zygote.py, kernel_launcher.py and kernel_client.py also run
as standalone scripts); limits.py may import ``grader``'s shared modules.
"""
