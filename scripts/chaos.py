#!/usr/bin/python3
"""The kill campaign (run it with scripts/chaos.sh, which builds the binaries and starts the
test servers): for each sink family a generated mailbox is migrated by the real `legacyflo`
binary while the process is killed with SIGKILL at random points, each time resumed with the
same state; at the end every output must be valid and hold every source message exactly once.

Kill points (one per attempt, chosen at random per attempt from a seeded generator):
  early         a random delay after the start (during open, the resume checks, re-reading)
  timed         a random delay after the attempt's 1st or 2nd checkpoint
  pre-commit    just before the next checkpoint is expected (85-100 % of the interval):
                usually inside the sink's commit (flush, fsync, S3 part acknowledgements)
  in-commit     the moment the engine creates the state's temporary file (the sink's commit
                is done, the checkpoint not yet renamed into place)
  after-commit  the moment the new checkpoint is renamed into place
  finishing     at the end: during the sink's finish, at the family's own finish event where
                there is one (the local ZIP renamed to its final name, the PST's `.partial`
                created, the S3 PST's upload marker written); the S3 ZIP a short random
                delay after the last commit (completing its uploads); Maildir and the vault,
                whose finish only commits, at the last commit's checkpoint write
  final         once every message is committed: the moment the (finished) checkpoint's
                temporary file is created, between finish and its checkpoint
Files are watched with inotify, so the kills land in those windows and no test-only hook is
needed in the product. The plan is `kills - 2` mid-run points, then `finishing` and `final`.

Truth: the same corpus (same seed) is written a second time as a Maildir tree, whose files
are the exact bytes of each message. Checks:
  ZIP      zipfile.testzip() and `unzip -tqq`; SHA-256 multiset of the .eml entries
  PST      `readpst -j 0` exports every message; pypff reads it: multiset of
           (Message-ID, SHA-256 of the plain body, line ends and trailing space normalised)
  Maildir  every file in cur/ and new/ parses as a message; SHA-256 multiset
  vault    IMAP UID FETCH BODY.PEEK[] of every mailbox; SHA-256 multiset
Also: no multipart upload or state object left in S3, no `.partial` file left locally.
The table: sink, kills, lost, duplicated, changed (found bytes no source message has), time.
Exit status 1 when any family lost, duplicated or changed a message, left an invalid output,
a panic, or delivered no kill at all."""

import argparse
import collections
import ctypes
import datetime
import email
import email.policy
import hashlib
import hmac
import http.client
import imaplib
import json
import os
import random
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.parse
import zipfile

FAMILIES = ["zip", "pst", "s3-zip", "s3-pst", "vault", "maildir"]
LABELS = {
    "zip": "local ZIP",
    "pst": "local PST",
    "s3-zip": "S3 ZIP (streamed)",
    "s3-pst": "S3 PST",
    "vault": "IMAP vault",
    "maildir": "Maildir",
}
MID_KINDS = ["early", "timed", "pre-commit", "in-commit", "after-commit"]
# the longest random delay of a `finishing` kill after the last commit (the S3 ZIP's finish
# completes its uploads)
FINISH_DELAY = {"s3-zip": 0.05}
VAULT_USER = "chaos"  # a Dovecot user of scripts/test-infra.sh that no test uses

# ---------------------------------------------------------------- inotify (Linux, via libc)

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO, IN_CREATE = 0x2, 0x8, 0x80, 0x100
_libc = ctypes.CDLL(None, use_errno=True)


class Inotify:
    """Watches directories (not recursively) for files created, written or renamed in."""

    def __init__(self):
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self.dirs = {}

    def watch(self, path, mask=IN_CREATE | IN_MOVED_TO):
        if path in self.dirs.values() or not os.path.isdir(path):
            return
        wd = _libc.inotify_add_watch(self.fd, os.fsencode(path), mask)
        if wd >= 0:
            self.dirs[wd] = path

    def events(self, timeout):
        """(directory, name, mask) of the events within `timeout` seconds."""
        r, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not r:
            return []
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        out, i = [], 0
        while i + 16 <= len(data):
            wd, mask, _cookie, n = struct.unpack_from("iIII", data, i)
            name = data[i + 16 : i + 16 + n].rstrip(b"\0").decode("utf-8", "replace")
            out.append((self.dirs.get(wd, ""), name, mask))
            i += 16 + n
        return out

    def close(self):
        os.close(self.fd)


# ---------------------------------------------------------------- S3 (SigV4, plain HTTP)


class S3:
    """The few S3 calls the checks need, signed with SigV4 (the test server checks it)."""

    def __init__(self, endpoint, key, secret, region):
        u = urllib.parse.urlparse(endpoint)
        self.host, self.port = u.hostname, u.port or 80
        self.key, self.secret, self.region = key, secret, region

    @staticmethod
    def _enc(s, keep_slash):
        return urllib.parse.quote(s, safe="/~" if keep_slash else "~")

    def request(self, method, path, query=None, body=b"", sink=None):
        query = query or {}
        now = datetime.datetime.now(datetime.timezone.utc)
        amz, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
        payload = hashlib.sha256(body).hexdigest()
        cpath = self._enc(path, True)
        cquery = "&".join(
            f"{self._enc(k, False)}={self._enc(v, False)}" for k, v in sorted(query.items())
        )
        headers = {
            "host": f"{self.host}:{self.port}",
            "x-amz-content-sha256": payload,
            "x-amz-date": amz,
        }
        signed = ";".join(sorted(headers))
        canon = "\n".join(
            [method, cpath, cquery, "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
             signed, payload]
        )
        scope = f"{day}/{self.region}/s3/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz, scope, hashlib.sha256(canon.encode()).hexdigest()]
        )
        k = ("AWS4" + self.secret).encode()
        for part in (day, self.region, "s3", "aws4_request"):
            k = hmac.new(k, part.encode(), hashlib.sha256).digest()
        sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.key}/{scope}, SignedHeaders={signed}, "
            f"Signature={sig}"
        )
        conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
        conn.request(method, cpath + ("?" + cquery if cquery else ""), body=body, headers=headers)
        resp = conn.getresponse()
        if sink is not None and resp.status == 200:
            shutil.copyfileobj(resp, sink, 1 << 20)
            data = b""
        else:
            data = resp.read()
        conn.close()
        if resp.status >= 300:
            raise RuntimeError(f"S3 {method} {path}: HTTP {resp.status}: {data[:300]!r}")
        return data

    def create_bucket(self, bucket):
        self.request("PUT", f"/{bucket}")

    def get_to_file(self, bucket, key, dest):
        with open(dest, "wb") as f:
            self.request("GET", f"/{bucket}/{key}", sink=f)

    def keys(self, bucket, prefix=""):
        out, token = [], None
        while True:
            q = {"list-type": "2", "prefix": prefix}
            if token:
                q["continuation-token"] = token
            x = self.request("GET", f"/{bucket}", q).decode()
            out += re.findall(r"<Key>([^<]*)</Key>", x)
            m = re.search(r"<NextContinuationToken>([^<]*)</NextContinuationToken>", x)
            if "<IsTruncated>true</IsTruncated>" not in x or not m:
                return out
            token = m.group(1)

    def open_uploads(self, bucket):
        x = self.request("GET", f"/{bucket}", {"uploads": ""}).decode()
        return re.findall(r"<Upload>.*?<Key>([^<]*)</Key>", x)


# ---------------------------------------------------------------- truth and checks


def sha(b):
    return hashlib.sha256(b).hexdigest()


def body_key(raw):
    """(Message-ID, SHA-256 of the plain body) as the PST check compares them."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    part = msg.get_body(preferencelist=("plain",))
    body = part.get_content().encode() if part is not None else b""
    return (str(msg["Message-ID"] or "").strip(), norm_body(body))


def norm_body(b):
    return sha(b.replace(b"\r\n", b"\n").rstrip())


def maildir_files(root):
    for d, _dirs, files in os.walk(root):
        if os.path.basename(d) in ("cur", "new"):
            for f in files:
                yield os.path.join(d, f)


def truth(maildir):
    raws = collections.Counter()
    bodies = collections.Counter()
    for p in maildir_files(maildir):
        with open(p, "rb") as f:
            raw = f.read()
        raws[sha(raw)] += 1
        bodies[body_key(raw)] += 1
    return raws, bodies


def compare(want, got):
    """(lost, duplicated, changed) of multiset `got` against `want`."""
    lost = sum((want - got).values())
    extra = got - want
    dup = sum(n for k, n in extra.items() if k in want)
    changed = sum(n for k, n in extra.items() if k not in want)
    # a changed message also shows as lost; count it once, as changed
    return max(0, lost - changed), dup, changed


def check_zip(path, problems):
    got = collections.Counter()
    r = subprocess.run(["unzip", "-tqq", path], capture_output=True, text=True)
    if r.returncode != 0:
        problems.append(f"unzip -t {path}: exit {r.returncode}: {r.stdout[-300:]}{r.stderr[-300:]}")
    with zipfile.ZipFile(path) as z:
        bad = z.testzip()
        if bad is not None:
            problems.append(f"zipfile: bad entry {bad} in {path}")
        for info in z.infolist():
            if info.filename.endswith(".eml"):
                got[sha(z.read(info))] += 1
    return got


def pst_messages(folder):
    for i in range(folder.number_of_sub_messages):
        yield folder.get_sub_message(i)
    for i in range(folder.number_of_sub_folders):
        yield from pst_messages(folder.get_sub_folder(i))


def check_pst(path, tmp, problems):
    import pypff  # Debian's python3-pypff, installed by scripts/test-infra.sh

    out = os.path.join(tmp, "readpst")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    r = subprocess.run(["readpst", "-j", "0", "-q", "-e", "-8", "-o", out, path],
                       capture_output=True, text=True)
    exported = sum(1 for _ in (p for d, _, fs in os.walk(out) for p in fs if p.endswith(".eml")))
    if r.returncode != 0:
        problems.append(f"readpst {path}: exit {r.returncode}: {r.stderr[-300:]}")
    shutil.rmtree(out, ignore_errors=True)
    got = collections.Counter()
    f = pypff.file()
    f.open(path)
    for m in pst_messages(f.get_root_folder()):
        mid = re.search(r"(?im)^message-id:[ \t]*(\S+)", m.transport_headers or "")
        got[(mid.group(1) if mid else "", norm_body(m.plain_text_body or b""))] += 1
    f.close()
    if exported != sum(got.values()):
        problems.append(f"readpst exported {exported} messages, pypff read {sum(got.values())}")
    return got


def check_maildir(root, problems):
    got = collections.Counter()
    for p in maildir_files(root):
        with open(p, "rb") as f:
            raw = f.read()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if not msg.keys() or msg["Message-ID"] is None:
            problems.append(f"not a message: {p}")
        got[sha(raw)] += 1
    left = [p for d, _, fs in os.walk(root) if os.path.basename(d) == "tmp" for p in fs]
    if left:
        print(f"    note: {len(left)} file(s) left in Maildir tmp/ (allowed by Maildir)")
    return got


def check_vault(env, problems):
    got = collections.Counter()
    c = imaplib.IMAP4(env["TEST_IMAP_HOST"], int(env["TEST_IMAP_PORT"]))
    c.login(VAULT_USER, VAULT_USER + "pw")
    typ, boxes = c.list('""', "*")
    for line in boxes or []:
        text = line.decode() if isinstance(line, bytes) else str(line)
        if "\\Noselect" in text:
            continue
        m = re.match(r'\((?P<f>[^)]*)\) (?P<d>"[^"]*"|NIL) (?P<n>.*)$', text)
        name = m.group("n") if m else text.split(" ")[-1]
        typ, data = c.select(name, readonly=True)
        if typ != "OK":
            problems.append(f"SELECT {name}: {data}")
            continue
        typ, data = c.uid("SEARCH", None, "ALL")
        uids = data[0].split() if data and data[0] else []
        for i in range(0, len(uids), 500):
            typ, data = c.uid("FETCH", b",".join(uids[i : i + 500]).decode(), "(BODY.PEEK[])")
            for item in data:
                if isinstance(item, tuple):
                    got[sha(item[1])] += 1
    c.logout()
    return got


# ---------------------------------------------------------------- one family


class Family:
    def __init__(self, name, args, env, work, bins, src, n, commit_every):
        self.name, self.args, self.env, self.n = name, args, env, n
        self.dir = os.path.join(work, name)
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(os.path.join(self.dir, "logs"))
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.state)
        self.out = os.path.join(self.dir, "out")
        self.bin = os.path.join(bins, "legacyflo")
        self.bucket = None
        s3 = []
        if name.startswith("s3-"):
            self.bucket = f"chaos-{name}-{int(time.time() * 1000) % 10**10}"
            self.s3 = S3(env["TEST_S3_ENDPOINT"], env["AWS_ACCESS_KEY_ID"],
                         env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_REGION", "us-east-1"))
            self.s3.create_bucket(self.bucket)
            s3 = ["--s3-endpoint", env["TEST_S3_ENDPOINT"], "--s3-region",
                  env.get("AWS_REGION", "us-east-1"), "--s3-path-style", "true"]
        kind, dest = {
            "zip": ("MBOX-S3-ZIP", ["--dest-url", self.out + "/", "--file-name", "box"]),
            "pst": ("MBOX-S3-PST", ["--dest-url", self.out + "/", "--file-name", "box"]),
            "s3-zip": ("MBOX-S3-ZIP", ["--dest-url", f"s3://{self.bucket}/out/",
                                       "--file-name", "box"]),
            "s3-pst": ("MBOX-S3-PST", ["--dest-url", f"s3://{self.bucket}/out/",
                                       "--file-name", "box"]),
            "vault": ("MBOX-VAULTASTIC4", [
                "--dest-server", env["TEST_IMAP_HOST"], "--dest-port", env["TEST_IMAP_PORT"],
                "--dest-user", VAULT_USER, "--dest-password-env", "CHAOS_VAULT_PW",
                "--dest-tls", "none"]),
            "maildir": ("MBOX-MAILDIR", ["--dest-url", self.out + "/"]),
        }[name]
        if name == "vault":
            # an empty vault: Dovecot recreates the home at the next login
            shutil.rmtree(os.path.join(env["TEST_IMAP_MAILDIR_ROOT"], VAULT_USER),
                          ignore_errors=True)
        self.cmd = [self.bin, "run", kind, "--source-url", src, *dest, *s3,
                    "--state-dir", self.state, "--commit-every", str(commit_every),
                    "-vv" if args.verbose else "-q"]
        self.child_env = {k: v for k, v in env.items() if not k.startswith("LEGACYFLO_")}
        self.child_env["CHAOS_VAULT_PW"] = VAULT_USER + "pw"
        self.commit_every = commit_every
        self.interval = 0.3  # seconds between checkpoints, learnt from the runs
        self.saves = 0
        self.attempt = 0

    def state_file(self):
        for f in os.listdir(self.state):
            if f.endswith(".json"):
                return os.path.join(self.state, f)
        return None

    def committed(self):
        """(source messages the saved checkpoint has behind it: stored, recognised as
        already stored, or skipped; whether it is finished)."""
        p = self.state_file()
        if not p:
            return 0, False
        try:
            with open(p, "rb") as f:
                st = json.load(f)
        except (OSError, ValueError):
            return 0, False
        n = sum(int(fc.get("report", {}).get(k, 0)) for fc in st.get("folders", [])
                for k in ("messages", "duplicates", "skipped", "filtered"))
        return n, bool(st.get("finished"))

    def finish_dirs(self):
        """Directories whose new files mark the sink's finish, and the names that do."""
        if self.name in ("zip", "pst"):
            return [self.out], ("box.zip", "box.pst.partial", "box.pst")
        if self.name == "s3-pst":
            spool = os.path.join(self.dir, ".legacyflo", "spool")
            dirs = [os.path.join(spool, d) for d in os.listdir(spool)] if os.path.isdir(spool) else []
            return dirs, ("uploaded.json", "box.pst.partial")
        return [], ()

    def run(self, kind, rng):
        """One attempt: start, kill at the `kind` point (None: no kill). Returns
        ('killed', seconds) or ('exited', code)."""
        self.attempt += 1
        log = open(os.path.join(self.dir, "logs", f"attempt-{self.attempt:02}-{kind}.log"), "wb")
        ino = Inotify()
        ino.watch(self.state, IN_CREATE | IN_MODIFY | IN_MOVED_TO)
        fin_dirs, fin_names = self.finish_dirs()
        if self.name in ("zip", "pst"):
            os.makedirs(self.out, exist_ok=True)
        for d in fin_dirs:
            ino.watch(d)
        committed, _ = self.committed()
        all_in = all_in_at_start = committed >= self.n
        near_end = committed + self.commit_every >= self.n  # the next commit may be the last
        start = time.monotonic()
        proc = subprocess.Popen(self.cmd, cwd=self.dir, env=self.child_env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        want_saves = rng.choice([1, 1, 2]) if kind in ("timed", "pre-commit", "in-commit",
                                                         "after-commit") else 0
        deadline = None  # monotonic time of a timed kill
        if kind == "early":
            deadline = start + rng.uniform(0.02, 0.6)
        saves = 0
        all_in_saves = 0  # checkpoints of this attempt with every message committed
        last_save = start
        killed_at = None
        try:
            while proc.poll() is None:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    killed_at = now
                    break
                if self.name == "s3-pst" and not fin_dirs:
                    fin_dirs, fin_names = self.finish_dirs()
                    for d in fin_dirs:
                        ino.watch(d)
                timeout = 0.005 if deadline is None else min(0.005, deadline - now)
                hit = False
                for d, name, mask in ino.events(timeout):
                    # created, or written: a killed run may have left the temporary file
                    if d == self.state and name.endswith(".json.tmp") and mask & (
                            IN_CREATE | IN_MODIFY):
                        if (kind == "in-commit" and saves >= want_saves) or (
                                kind == "final" and (all_in_at_start or all_in_saves >= 1)):
                            hit = True
                        elif kind == "finishing" and near_end and self.name not in FINISH_DELAY \
                                and not fin_names:
                            hit = True
                    elif d == self.state and name.endswith(".json") and mask & IN_MOVED_TO:
                        saves += 1
                        self.saves += 1
                        t = time.monotonic()
                        self.interval = 0.7 * self.interval + 0.3 * max(0.01, t - last_save)
                        last_save = t
                        n, finished = self.committed()
                        near_end = near_end or n + self.commit_every >= self.n
                        if kind == "after-commit" and saves >= want_saves:
                            hit = True
                        elif kind == "timed" and saves == want_saves:
                            deadline = t + rng.uniform(0, self.interval)
                        elif kind == "pre-commit" and saves == want_saves:
                            deadline = t + rng.uniform(0.85, 1.0) * self.interval
                        if n >= self.n and not finished:
                            all_in = True
                            all_in_saves += 1
                            if kind == "finishing" and self.name in FINISH_DELAY:
                                deadline = t + rng.uniform(0.0, FINISH_DELAY[self.name])
                            # a mid-run point not reached before the end: kill in finish
                            elif kind in MID_KINDS and not hit and deadline is None:
                                deadline = t + rng.uniform(0.0, 0.1)
                    elif d in fin_dirs and name in fin_names and kind == "finishing" and (
                            mask & (IN_CREATE | IN_MOVED_TO)):
                        if name.endswith(".pst.partial"):
                            deadline = time.monotonic() + rng.uniform(0.0, 0.3)  # building
                        else:
                            hit = True
                    if hit:
                        break
                if hit:
                    killed_at = time.monotonic()
                    break
            if killed_at is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return "killed", killed_at - start
            return "exited", proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            ino.close()
            log.close()

    def logs_with_panics(self):
        bad = []
        for f in sorted(os.listdir(os.path.join(self.dir, "logs"))):
            with open(os.path.join(self.dir, "logs", f), "rb") as fh:
                if b"panicked" in fh.read():
                    bad.append(f)
        return bad


def plan(kills, rng):
    mid = [rng.choice(MID_KINDS) for _ in range(max(0, kills - 2))]
    return mid + ["finishing", "final"][: max(0, kills - len(mid))]


def verify(fam, env, want_raw, want_body, problems):
    tmp = os.path.join(fam.dir, "check")
    os.makedirs(tmp, exist_ok=True)
    if fam.name in ("zip", "pst"):
        left = [f for f in os.listdir(fam.out) if ".partial" in f or f.endswith(".spool")]
        if left:
            problems.append(f"left in the output directory: {left}")
    if fam.bucket:
        ups = fam.s3.open_uploads(fam.bucket)
        if ups:
            problems.append(f"multipart uploads left open: {ups}")
        extra = [k for k in fam.s3.keys(fam.bucket, "out/")
                 if k not in ("out/box.zip", "out/box.csv", "out/box.pst")]
        if extra:
            problems.append(f"objects left in S3: {extra[:5]} ({len(extra)})")
    if fam.name == "zip":
        return want_raw, check_zip(os.path.join(fam.out, "box.zip"), problems)
    if fam.name == "s3-zip":
        p = os.path.join(tmp, "box.zip")
        fam.s3.get_to_file(fam.bucket, "out/box.zip", p)
        got = check_zip(p, problems)
        os.remove(p)
        return want_raw, got
    if fam.name == "pst":
        return want_body, check_pst(os.path.join(fam.out, "box.pst"), tmp, problems)
    if fam.name == "s3-pst":
        p = os.path.join(tmp, "box.pst")
        fam.s3.get_to_file(fam.bucket, "out/box.pst", p)
        got = check_pst(p, tmp, problems)
        os.remove(p)
        return want_body, got
    if fam.name == "maildir":
        return want_raw, check_maildir(fam.out, problems)
    return want_raw, check_vault(env, problems)


def campaign(name, args, env, want_raw, want_body, rng):
    fam = Family(name, args, env, args.work, args.bin, args.source, args.messages,
                 args.commit_every)
    problems = []
    kills, missed, points = 0, [], []
    start = time.monotonic()
    for kind in plan(args.kills, rng):
        result, value = fam.run(kind, rng)
        if result == "killed":
            kills += 1
            points.append(f"{kind}@{value:.2f}s")
        elif value == 0:
            missed.append(kind)  # finished before the point was reached
        else:
            points.append(f"{kind}:exit{value}")
            problems.append(f"attempt {fam.attempt} ({kind}) exited {value}")
    result, code = fam.run(None, rng)
    if code != 0:
        problems.append(f"the final run exited {code} (see {fam.dir}/logs)")
    result, code = fam.run(None, rng)  # a re-run of the finished request does nothing
    if code != 0:
        problems.append(f"the re-run of the finished request exited {code}")
    elapsed = time.monotonic() - start
    panics = fam.logs_with_panics()
    if panics:
        problems.append(f"panics in {panics}")
    if kills == 0:
        problems.append("no kill was delivered (the runs ended first)")
    t = time.monotonic()
    try:
        want, got = verify(fam, env, want_raw, want_body, problems)
        lost, dup, changed = compare(want, got)
    except Exception as e:  # an unreadable output is a failure, reported as such
        problems.append(f"checking the output failed: {type(e).__name__}: {e}")
        lost, dup, changed = -1, -1, -1
    check_time = time.monotonic() - t
    print(f"  {LABELS[name]}: {kills} kills ({', '.join(points)})"
          + (f"; missed (run ended first): {', '.join(missed)}" if missed else "")
          + f"; {fam.attempt} runs, {fam.saves} checkpoints; checked in {check_time:.1f} s",
          flush=True)
    if lost or dup or changed:
        problems.append(f"{lost} lost, {dup} duplicated, {changed} changed")
    for p in problems:
        print(f"    PROBLEM: {p}", flush=True)
    if not problems and not args.keep:
        shutil.rmtree(fam.dir, ignore_errors=True)
    return dict(sink=LABELS[name], kills=kills, lost=lost, duplicated=dup, changed=changed,
                time=elapsed, ok=not problems)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    ap.add_argument("--commit-every", type=int, default=0,
                    help="default: messages / (3 x kills), at least 20")
    ap.add_argument("--work", required=True, help="work directory (emptied)")
    ap.add_argument("--bin", required=True, help="directory of legacyflo and legacyflo-corpus")
    ap.add_argument("--keep", action="store_true", help="keep the work files of every family")
    ap.add_argument("--verbose", action="store_true",
                    help="run legacyflo with -vv (debug logs in the attempts' log files)")
    args = ap.parse_args()
    if not args.commit_every:
        args.commit_every = max(20, args.messages // (3 * max(1, args.kills)))
    fams = [f.strip() for f in args.families.split(",") if f.strip()]
    for f in fams:
        if f not in FAMILIES:
            sys.exit(f"unknown family {f}; known: {', '.join(FAMILIES)}")
    env = dict(os.environ)
    need = ["TEST_IMAP_HOST", "TEST_IMAP_PORT", "TEST_IMAP_MAILDIR_ROOT", "TEST_S3_ENDPOINT",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    missing = [k for k in need if not env.get(k)]
    if missing:
        sys.exit(f"chaos: {', '.join(missing)} not set: run scripts/chaos.sh (starts the servers)")
    os.makedirs(args.work, exist_ok=True)
    corpus = os.path.join(args.bin, "legacyflo-corpus")
    args.source = os.path.join(args.work, "source-mbox")
    truth_dir = os.path.join(args.work, "truth-maildir")
    for d in (args.source, truth_dir):
        shutil.rmtree(d, ignore_errors=True)
    t = time.monotonic()
    for d, fmt in ((args.source, "mbox"), (truth_dir, "maildir")):
        subprocess.run([corpus, "bench", "--messages", str(args.messages), "--seed",
                        str(args.seed), "--out", d, "--format", fmt],
                       check=True, stdout=subprocess.DEVNULL)
    want_raw, want_body = truth(truth_dir)
    size = sum(os.path.getsize(p) for p in maildir_files(truth_dir))
    shutil.rmtree(truth_dir)
    print(f"kill campaign: {args.messages} messages ({size / 2**20:.0f} MiB, seed {args.seed}), "
          f"{args.kills} kills per family, a checkpoint every {args.commit_every} messages "
          f"(corpus and truth in {time.monotonic() - t:.1f} s)", flush=True)
    if sum(want_raw.values()) != args.messages:
        sys.exit(f"the truth has {sum(want_raw.values())} messages, not {args.messages}")
    # one generator per family, so that `--families X --seed S` repeats X's plan of a full run
    rows = [campaign(f, args, env, want_raw, want_body, random.Random(f"{args.seed}/{f}"))
            for f in fams]
    print()
    print(f"| {'sink':<18} | kills | lost | duplicated | changed | time    |")
    print(f"|{'-' * 20}|-------|------|------------|---------|---------|")
    for r in rows:
        print(f"| {r['sink']:<18} | {r['kills']:>5} | {r['lost']:>4} | {r['duplicated']:>10} "
              f"| {r['changed']:>7} | {r['time']:>6.1f}s |" + ("" if r["ok"] else " FAILED"))
    if not args.keep and all(r["ok"] for r in rows):
        shutil.rmtree(args.source, ignore_errors=True)
    failed = [r["sink"] for r in rows if not r["ok"]]
    if failed:
        print(f"\nkill campaign FAILED for: {', '.join(failed)} (work files kept in {args.work})")
        return 1
    print("\nkill campaign passed: every output valid, every message exactly once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
