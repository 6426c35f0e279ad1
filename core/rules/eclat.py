"""Compiled kernels (numba) of the rules miner: basket encoding and frequent itemsets.

Frequent itemsets (``mine_trie``)
---------------------------------
Depth-first Eclat on *projected* bitsets, the result kept as a prefix tree (trie):

* Frequent items are coded 0..m-1 by increasing support; only baskets with at least two
  frequent items are kept (the others hold no pair).
* Items are taken as prefixes from the most frequent (m-1) down to the rarest (0). For prefix
  ``a``, its baskets that hold an item above ``a`` are numbered 0..n_a-1 and every more
  frequent item ``b > a`` gets a bitset over *those* baskets only (one pass over them; the
  pairs {a, b} are counted from these bitsets): rare prefixes, which are most of them, get
  bitsets of a few words.
* Inside the class of ``a`` the search is the usual Eclat depth-first recursion (an explicit
  stack of classes): X u {y} u {z} is counted as popcount(bits(X u {y}) & bits(X u {z}))
  (hardware popcount), and is not even intersected when the pair {y, z} is infrequent (pairs
  of items above ``a`` are all known by then).
* Each frequent itemset is a trie node: ``item``, ``count``, ``parent`` (the itemset without its
  last item), ``sib`` (without its last-but-one item: the other itemset it was intersected
  from), and its children (the frequent itemsets one item longer, extended by a larger code) as
  one contiguous block ``cstart:cend`` sorted by item. Nodes 0..m-1 are the single items. Any
  itemset (items in increasing code order) is found by walking from its first item, one binary
  search per step.

Rules are made from the trie by core.rules.rulegen.

Every kernel is compiled once and cached on disk (``cache=True``: beside this file, or in
numba's user cache directory where that is not writable).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def _popcount(typingctx, x):
    """Hardware population count of a uint64 (LLVM ctpop)."""
    sig = types.int64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


# --------------------------------------------------------------------------- baskets
@njit(cache=True)
def dedupe_pairs(b_codes, i_codes, n_baskets, n_items):
    """(basket, item) pairs grouped by basket (ascending), each pair once, items of a basket in
    order of first appearance. O(pairs + baskets + items): a stable counting sort by basket
    (skipped when the baskets already come in order), then a last-seen mark per item."""
    n = len(b_codes)
    order = np.arange(n)
    for k in range(1, n):
        if b_codes[k] < b_codes[k - 1]:
            start = np.zeros(n_baskets + 1, np.int64)
            for q in range(n):
                start[b_codes[q] + 1] += 1
            for q in range(n_baskets):
                start[q + 1] += start[q]
            for q in range(n):
                b = b_codes[q]
                order[start[b]] = q
                start[b] += 1
            break
    last = np.full(n_items, -1, np.int64)
    out_b = np.empty(n, np.int64)
    out_i = np.empty(n, np.int64)
    j = 0
    for q in range(n):
        k = order[q]
        b, i = b_codes[k], i_codes[k]
        if last[i] != b:
            last[i] = b
            out_b[j] = b
            out_i[j] = i
            j += 1
    return out_b[:j], out_i[:j]


# --------------------------------------------------------------------------- trie helpers
@njit(cache=True)
def _grow1(a, need):
    if need <= len(a):
        return a
    out = np.empty(max(need, 2 * len(a)), a.dtype)
    out[:len(a)] = a
    return out


@njit(cache=True)
def _grow_rows(a, need):
    if need <= a.shape[0]:
        return a
    out = np.empty((max(need, 2 * a.shape[0]), a.shape[1]), a.dtype)
    out[:a.shape[0]] = a
    return out


@njit(cache=True)
def _grow_nodes(item, count, parent, sib, cstart, cend, depth, need):
    """The trie's node arrays with room for ``need`` nodes."""
    return (_grow1(item, need), _grow1(count, need), _grow1(parent, need), _grow1(sib, need),
            _grow1(cstart, need), _grow1(cend, need), _grow1(depth, need))


@njit(cache=True)
def _child(item, cstart, cend, node, x):
    """Child of ``node`` holding item ``x`` (binary search in its block), -1 if none."""
    lo, hi = cstart[node], cend[node]
    while lo < hi:
        mid = (lo + hi) >> 1
        v = item[mid]
        if v < x:
            lo = mid + 1
        elif v > x:
            hi = mid
        else:
            return mid
    return -1


@njit(cache=True)
def _find(item, cstart, cend, path, k, skip):
    """Node of the itemset path[:k] without position ``skip`` (items in increasing order)."""
    node = -1
    for p in range(k):
        if p == skip:
            continue
        if node < 0:
            node = path[p]
        else:
            node = _child(item, cstart, cend, node, path[p])
            if node < 0:
                return -1
    return node


# --------------------------------------------------------------------------- itemsets
@njit(cache=True)
def _project(a, m, smin, vstart, vlist, hstart, hlist, proj, dense, cnt):
    """The bitsets of every item x > a over the baskets of a that hold an item above a (word w
    of x at w * (m - a - 1) + x - a - 1 in ``dense``) and the counts of the pairs {a, x} in
    ``cnt``. Returns the number of those baskets (nothing is filled when below smin)."""
    na = 0
    for t in range(vstart[a], vstart[a + 1]):
        b = vlist[t]
        if hlist[hstart[b + 1] - 1] > a:
            proj[na] = b
            na += 1
    if na < smin:
        return na
    words = (na + 63) >> 6
    nb = m - a - 1
    dense[:nb * words] = 0
    for j in range(na):  # one pass over the baskets sets the bits
        b = proj[j]
        off = (j >> 6) * nb - a - 1
        bit = np.uint64(1) << np.uint64(j & 63)
        for k in range(hstart[b + 1] - 1, hstart[b] - 1, -1):
            x = hlist[k]
            if x <= a:
                break
            dense[off + x] |= bit
    cnt[a + 1:] = 0
    for w in range(words):
        for x in range(nb):
            cnt[a + 1 + x] += _popcount(dense[w * nb + x])
    return na


@njit(cache=True)
def _class_dfs(item, count, parent, sib, cstart, cend, depth, n_nodes, buf, rownode, rowloc,
               cand, pairok, members, loc, kk, smin, max_len, max_nodes, f_start, f_n, f_next,
               f_depth):
    """Eclat depth-first search of one prefix's class (mine_trie): rows 0..kk-1 of ``buf`` hold
    the members' bitsets. Returns (n_nodes, status): 0 done, 1 the node arrays are full, 2 the
    bitset rows are, 3 more than ``max_nodes`` itemsets. (A function of its own: arrays that
    can be reassigned inside a loop cost reference counting on every iteration.)"""
    words = buf.shape[1]
    sp = 0
    f_start[0] = 0
    f_n[0] = kk
    f_next[0] = 0
    f_depth[0] = 2
    top = kk
    while sp >= 0:
        if f_next[sp] >= f_n[sp] - 1:
            top = f_start[sp]
            sp -= 1
            continue
        s0 = f_start[sp]
        j = s0 + f_next[sp]
        f_next[sp] += 1
        end = s0 + f_n[sp]
        d = f_depth[sp] + 1  # size of the itemsets made here
        pnode = rownode[j]
        lj = rowloc[j]
        new0 = top
        first = n_nodes
        # candidates: later members y of the class with {x, y} frequent (x = member j);
        # in the class of a itself, they are the members among x's pair children
        nc = 0
        if sp == 0:
            nd = members[j]
            for ch in range(cstart[nd], cend[nd]):
                u = loc[item[ch]]
                if u > j:
                    cand[nc] = u
                    nc += 1
        else:
            for l in range(j + 1, end):
                if pairok[lj, rowloc[l]]:
                    cand[nc] = l
                    nc += 1
        # room for nc more nodes and rows (checked here, not in the hot loop)
        if n_nodes + nc > len(item):
            return n_nodes, 1
        if top + nc > buf.shape[0]:
            return n_nodes, 2
        for q in range(nc):
            l = cand[q]
            c = 0
            for w in range(words):
                v = buf[j, w] & buf[l, w]
                buf[top, w] = v
                c += _popcount(v)
            if c >= smin:
                if n_nodes >= max_nodes:
                    return n_nodes + 1, 3
                item[n_nodes] = item[rownode[l]]
                count[n_nodes] = c
                parent[n_nodes] = pnode
                sib[n_nodes] = rownode[l]
                cstart[n_nodes] = 0
                cend[n_nodes] = 0
                depth[n_nodes] = d
                rownode[top] = n_nodes
                rowloc[top] = rowloc[l]
                n_nodes += 1
                top += 1
        cstart[pnode] = first
        cend[pnode] = n_nodes
        if top - new0 >= 2 and d < max_len:
            sp += 1
            f_start[sp] = new0
            f_n[sp] = top - new0
            f_next[sp] = 0
            f_depth[sp] = d
        else:
            top = new0
    return n_nodes, 0


@njit(cache=True)
def mine_trie(b_idx, code, n_baskets, m, item_counts, smin, max_len, max_nodes, max_words):
    """Frequent itemsets (module doc). ``code``: frequent-item code per pair, -1 when the item
    is infrequent. Returns (item, count, parent, sib, cstart, cend, depth, n_nodes, status):
    status 0 when done, 1 when more than ``max_nodes`` itemsets were found (the search stops),
    2 when the prefix bitsets would need more than ``max_words`` words of memory."""
    cap = max(1024, 4 * m)
    item = np.empty(cap, np.int32)
    count = np.empty(cap, np.int64)
    parent = np.empty(cap, np.int32)
    sib = np.empty(cap, np.int32)
    cstart = np.zeros(cap, np.int64)
    cend = np.zeros(cap, np.int64)
    depth = np.empty(cap, np.int32)
    for c in range(m):
        item[c] = c
        count[c] = item_counts[c]
        parent[c] = -1
        sib[c] = -1
        depth[c] = 1
    n_nodes = m
    if m > max_nodes:
        return item, count, parent, sib, cstart, cend, depth, n_nodes, 1
    if max_len < 2 or m < 2:
        return item, count, parent, sib, cstart, cend, depth, n_nodes, 0

    # Baskets with >= 2 frequent items: vertical lists (baskets of each item, ascending) and
    # horizontal lists (items of each basket, ascending: built by walking the items in order).
    per_b = np.zeros(n_baskets, np.int64)
    for k in range(len(b_idx)):
        if code[k] >= 0:
            per_b[b_idx[k]] += 1
    vstart = np.zeros(m + 1, np.int64)
    for k in range(len(b_idx)):
        if code[k] >= 0 and per_b[b_idx[k]] >= 2:
            vstart[code[k] + 1] += 1
    for c in range(m):
        vstart[c + 1] += vstart[c]
    vlist = np.empty(vstart[m], np.int64)
    fill = vstart[:m].copy()
    for k in range(len(b_idx)):
        c = code[k]
        if c >= 0 and per_b[b_idx[k]] >= 2:
            vlist[fill[c]] = b_idx[k]
            fill[c] += 1
    hstart = np.zeros(n_baskets + 1, np.int64)
    for b in range(n_baskets):
        hstart[b + 1] = hstart[b] + (per_b[b] if per_b[b] >= 2 else 0)
    hlist = np.empty(hstart[n_baskets], np.int32)
    hfill = hstart[:n_baskets].copy()
    for c in range(m):
        for k in range(vstart[c], vstart[c + 1]):
            b = vlist[k]
            hlist[hfill[b]] = c
            hfill[b] += 1

    cnt = np.zeros(m, np.int64)
    loc = np.full(m, -1, np.int64)
    members = np.empty(m, np.int64)
    cand = np.empty(m, np.int64)
    # bitsets of every item above a over the baskets of a: words_a rows of (m - a - 1) words
    # (word w of item x at w * (m - a - 1) + x - a - 1: the items of one basket are close)
    dense_size = 1
    for a in range(m):
        dense_size = max(dense_size, (m - a - 1) * ((vstart[a + 1] - vstart[a] + 63) >> 6))
    if dense_size > max_words:
        return item, count, parent, sib, cstart, cend, depth, n_nodes, 2
    dense = np.empty(dense_size, np.uint64)
    proj = np.empty(n_baskets, np.int64)
    # DFS state: a stack of classes; rows of bitsets with each row's trie node and its index in
    # the class of a
    f_start = np.empty(max_len + 1, np.int64)
    f_n = np.empty(max_len + 1, np.int64)
    f_next = np.empty(max_len + 1, np.int64)
    f_depth = np.empty(max_len + 1, np.int64)
    flat = np.empty(64, np.uint64)  # grows (doubling) to the largest stack of classes
    rownode = np.empty(1024, np.int64)
    rowloc = np.empty(1024, np.int64)
    for a in range(m - 1, -1, -1):
        na = _project(a, m, smin, vstart, vlist, hstart, hlist, proj, dense, cnt)
        if na < smin:
            continue
        words = (na + 63) >> 6
        nb = m - a - 1
        kk = 0
        for x in range(a + 1, m):
            if cnt[x] >= smin:
                members[kk] = x
                kk += 1
        # trie nodes of the frequent pairs: the children block of node a
        if n_nodes + kk > max_nodes:
            return item, count, parent, sib, cstart, cend, depth, n_nodes + kk, 1
        item, count, parent, sib, cstart, cend, depth = _grow_nodes(
            item, count, parent, sib, cstart, cend, depth, n_nodes + kk)
        cstart[a] = n_nodes
        for t in range(kk):
            x = members[t]
            item[n_nodes] = x
            count[n_nodes] = cnt[x]
            parent[n_nodes] = a
            sib[n_nodes] = x
            cstart[n_nodes] = 0
            cend[n_nodes] = 0
            depth[n_nodes] = 2
            n_nodes += 1
        cend[a] = n_nodes
        if kk < 2 or max_len < 3:
            continue
        # frequent pairs among the members (items above a: their pairs are in the trie)
        for t in range(kk):
            loc[members[t]] = t
        pairok = np.zeros((kk, kk), np.bool_)
        for t in range(kk):
            nd = members[t]
            for ch in range(cstart[nd], cend[nd]):
                u = loc[item[ch]]
                if u > t:
                    pairok[t, u] = True
        # depth-first search of the class of a; when the node arrays or the bitset rows run
        # out of room it stops, they grow, and the class is searched again
        base = n_nodes
        while True:
            rows = max(flat.shape[0] // words, 2 * kk)
            if rows * words > flat.shape[0]:
                flat = np.empty(rows * words, np.uint64)
            buf = flat[:rows * words].reshape((rows, words))
            rownode = _grow1(rownode, rows)
            rowloc = _grow1(rowloc, rows)
            for t in range(kk):
                x = members[t] - a - 1
                for w in range(words):
                    buf[t, w] = dense[w * nb + x]
                rownode[t] = cstart[a] + t
                rowloc[t] = t
            n_nodes, status = _class_dfs(item, count, parent, sib, cstart, cend, depth, n_nodes,
                                         buf, rownode, rowloc, cand, pairok, members, loc, kk,
                                         smin, max_len, max_nodes, f_start, f_n, f_next, f_depth)
            if status == 0:
                break
            if status == 3:
                return item, count, parent, sib, cstart, cend, depth, n_nodes, 1
            n_nodes = base
            if status == 1:
                item, count, parent, sib, cstart, cend, depth = _grow_nodes(
                    item, count, parent, sib, cstart, cend, depth, 2 * len(item))
            else:
                flat = np.empty(2 * rows * words, np.uint64)
        for t in range(kk):
            loc[members[t]] = -1
    return item, count, parent, sib, cstart, cend, depth, n_nodes, 0


@njit(cache=True)
def trie_levels(item, count, parent, sib, cstart, cend, depth, n_nodes, m, max_depth):
    """Itemsets of each size in lexicographic order (pre-order walk of the trie, children in
    item order): returns (items (n, max_depth) int32 padded with -1, counts, sizes)."""
    out = np.full((n_nodes, max_depth), -1, np.int32)
    cnts = np.empty(n_nodes, np.int64)
    sizes = np.empty(n_nodes, np.int64)
    stack = np.empty(n_nodes + 1, np.int64)
    path = np.empty(max_depth, np.int32)
    r = 0
    for root in range(m):
        sp = 0
        stack[0] = root
        while sp >= 0:
            node = stack[sp]
            sp -= 1
            d = depth[node]
            x = node
            for p in range(d - 1, -1, -1):
                path[p] = item[x]
                x = parent[x]
            out[r, :d] = path[:d]
            cnts[r] = count[node]
            sizes[r] = d
            r += 1
            for ch in range(cend[node] - 1, cstart[node] - 1, -1):
                sp += 1
                stack[sp] = ch
    return out, cnts, sizes
