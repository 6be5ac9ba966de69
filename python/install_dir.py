"""Prints the folder, relative to PREFIX, that `cmake --install` puts the package sdsgsm in: the
module folder the interpreter running this script searches for that prefix.

    python3 install_dir.py PREFIX

/usr on Debian: lib/python3/dist-packages (the place of packaged modules, hence the .deb's);
/usr/local on Debian: lib/python3.X/dist-packages; any other prefix: the prefix's own
lib/python3.X/site-packages (on the path only with PYTHONPATH).
"""
import os
import sys
import sysconfig

prefix = os.path.normpath(sys.argv[1])
schemes = sysconfig.get_scheme_names()
if prefix == "/usr" and "deb_system" in schemes:
    path = sysconfig.get_path("platlib", "deb_system")
elif prefix == "/usr/local" and "posix_local" in schemes:
    path = sysconfig.get_path("platlib", "posix_local")
else:
    path = sysconfig.get_path("platlib", "posix_prefix", vars={"base": prefix, "platbase": prefix})
print(os.path.relpath(path, prefix))
