# ipvs.awk: questions about an ipvs.rec of ipvs-sampler.sh (see lib-ipvs.sh). SPEC is clauses
# separated by spaces:
#   SVC/DEST=W     destination DEST of service SVC has weight W
#   SVC=absent     no service SVC
#   SVC=noweight   no service SVC, or none of its destinations has a non-zero weight
# mode=first AFTER: "seen T" for the first sample after AFTER where SPEC holds ("already T"
#   when it held in the state in effect at AFTER; "never" when not yet).
# mode=hold FROM TO: "VIOLATIONS SAMPLES MAXGAP_US FIRST_BAD_T FIRST_BAD_STATE" over the state
#   in effect at FROM and every sample in (FROM, TO].
function parse(st,   n, tok, i, p, svc, m, ds, j, kv) {
	delete W; delete S
	n = split(st, tok, " ")
	for (i = 1; i <= n; i++) {
		p = index(tok[i], ">"); svc = substr(tok[i], 1, p - 1); S[svc] = 1
		m = split(substr(tok[i], p + 1), ds, ",")
		for (j = 1; j <= m; j++) if (ds[j] != "") { split(ds[j], kv, "="); W[svc "/" kv[1]] = kv[2] }
	}
}
function holds(   n, c, i, a, svc, k) {
	n = split(spec, c, " ")
	for (i = 1; i <= n; i++) {
		if (c[i] ~ /=absent$/) { svc = c[i]; sub(/=absent$/, "", svc); if (svc in S) return 0; continue }
		if (c[i] ~ /=noweight$/) {
			svc = c[i]; sub(/=noweight$/, "", svc)
			for (k in W) if (index(k, svc "/") == 1 && W[k] != 0) return 0
			continue
		}
		split(c[i], a, "=")
		if (!(a[1] in W) || W[a[1]] != a[2]) return 0
	}
	return 1
}
{
	t = $1 + 0
	if ($2 != "=") { st = $0; sub(/^[0-9]+ S ?/, "", st); cur = st; have = 1 }
	if (t <= from) { eff = cur; effhave = have; lastt = t; next }
	if (!started) {
		started = 1
		if (effhave) {
			parse(eff)
			if (mode == "first" && holds()) { printf "already %.0f\n", lastt; done = 1; exit }
			if (mode == "hold") { samples++; if (!holds()) { bad++; fbt = lastt; fbs = eff } }
		}
		gapfrom = from
	}
	if (mode == "hold" && t > to) { exit }
	parse(cur)
	if (t - gapfrom > maxgap) maxgap = t - gapfrom
	gapfrom = t
	if (mode == "first" && holds()) { printf "seen %.0f\n", t; done = 1; exit }
	if (mode == "hold") { samples++; if (!holds()) { bad++; if (!fbt) { fbt = t; fbs = cur } } }
}
END {
	if (mode == "first" && !done) print "never", 0
	if (mode == "hold") {
		if (!started && effhave) { parse(eff); samples++; if (!holds()) { bad++; fbt = lastt; fbs = eff } }
		if (!started) gapfrom = from
		if (to - gapfrom > maxgap) maxgap = to - gapfrom
		printf "%d %d %.0f %.0f %s\n", bad, samples, maxgap, fbt, (fbs != "" ? fbs : "-")
	}
}
