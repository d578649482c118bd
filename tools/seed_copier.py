#!/usr/bin/env python3
"""seed_copier.py — the seeds' multi-process folder copier, made recursive.

This is the Python contender of tools/bench-copy: the copier that the documents in
../shared/seeds/ teach, kept as plain as they write it, so that the benchmark compares
taskrun's copy plugin with what a reader of the seeds would write:

  - a multiprocessing.Pool(2) (start method "fork", Linux's default before Python 3.14)
    and a Manager().Queue(), because a Pool's workers cannot share a plain Queue;
  - one apply_async per file; the task opens the source, copies it in 1 MiB blocks with
    read/write, copies its mode and times (shutil.copystat) and puts the file's name on
    the queue;
  - the parent closes the pool and reads one queue message per file, which is where the
    seeds print their "copied xx.xx %" progress line.

What it adds to the seeds, and no more: it walks the source with os.walk and creates every
folder in the parent before the first task (the seeds copy one flat folder); a task that
fails puts its error on the queue instead of the name (the seeds' apply_async drops the
exception, and their parent then waits for a message that never comes), and the copier
exits 1 after naming it; the progress line is printed only with --progress, to stderr.
Like the seeds it copies regular files (following symbolic links) and folders, nothing
else, and keeps no folder times.

    python3 tools/seed_copier.py [--progress] SRC DST     # like cp -a SRC/. DST
"""
import argparse
import multiprocessing
import os
import shutil
import sys

BLOCK = 1024 * 1024


def copy_file(q, src_path, dst_path, name):
    try:
        with open(src_path, "rb") as src_file, open(dst_path, "wb") as dst_file:
            while True:
                data = src_file.read(BLOCK)
                if not data:
                    break
                dst_file.write(data)
        shutil.copystat(src_path, dst_path)
    except OSError as e:
        q.put((name, str(e)))
        return
    q.put((name, None))


def main():
    ap = argparse.ArgumentParser(description="the seeds' Pool(2) + Manager().Queue() "
                                 "folder copier, recursive: copies SRC/. into DST")
    ap.add_argument("--progress", action="store_true",
                    help='print "copied xx.xx %%" to stderr as files are copied')
    ap.add_argument("src")
    ap.add_argument("dst")
    args = ap.parse_args()

    # 1. the folders, in the parent, before any task
    files = []
    for dirpath, dirnames, filenames in os.walk(args.src):
        rel = os.path.relpath(dirpath, args.src)
        os.makedirs(os.path.normpath(os.path.join(args.dst, rel)), exist_ok=True)
        for name in filenames:
            files.append(os.path.normpath(os.path.join(rel, name)))

    # 2. the pool and the queue, one apply_async per file
    ctx = multiprocessing.get_context("fork")
    po = ctx.Pool(2)
    q = ctx.Manager().Queue()
    for name in files:
        po.apply_async(copy_file, (q, os.path.join(args.src, name),
                                   os.path.join(args.dst, name), name))
    po.close()

    # 3. one message per file
    all_file_len = len(files)
    copy_ok_file_num = 0
    errors = []
    while copy_ok_file_num < all_file_len:
        name, error = q.get()
        copy_ok_file_num += 1
        if error is not None:
            errors.append(error)
        if args.progress:
            print("\rcopied %.2f %%" % (copy_ok_file_num * 100 / all_file_len), end="",
                  file=sys.stderr, flush=True)
    if args.progress:
        print(file=sys.stderr)
    po.join()
    for error in errors:
        print("seed_copier: %s" % error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
