# Sourced by black-box tests that need client certificates hearth's endpoint must refuse.
# Needs $HEARTH (as lib.sh does) and the openssl CLI (3.0); nothing else.
#
#   make_bad_certs DIR OUT   DIR: an initialised hearth data directory. Writes into OUT (0700):
#     expired.crt/.key     CN=bad-expired, issuing CA, validity wholly in the past
#     notyet.crt/.key      CN=bad-notyet, issuing CA, validity wholly in the future
#     foreign.crt/.key     CN=bad-foreign, signed by a throwaway P-256 root (foreign-ca.crt)
#     impostor.crt/.key    CN=bad-impostor, signed by a throwaway CA with the issuing CA's own
#                          subject and key identifier but another key (impostor-ca.crt): name and
#                          AKI lead to the issuing CA, only the signature is wrong
#     selfsigned.crt/.key  CN=bad-self, self-signed
#     serverauth.crt/.key  CN=bad-serverauth, issuing CA, extendedKeyUsage serverAuth only
#     revoked.crt/.key     device bad-revoked as hearth issued it, then `hearth device revoke`d
#     good.crt/.key        device good-1 as hearth issued it (positive control)
#     ca.pem               DIR/certs/ca.pem (what a client verifies the endpoint with)
#     foreign-ca.crt       the throwaway root (its key is not kept)
#     impostor-ca.crt      the impostor CA (its key is not kept)
#   Every bad-* id above is registered with `hearth device add --genkey`, so it is a known, active
#   device (bad-revoked excepted); each crafted certificate carries that device's own key pair and
#   hearth's device profile (P-256, ecdsa-with-SHA256, CA:FALSE, keyUsage critical
#   digitalSignature, extendedKeyUsage clientAuth, SKI, AKI) except for the one property under test.
#   The certificates hearth itself issued to the bad-* ids are not kept in OUT. The expired one is
#   valid from the issuing CA's own notBefore until two minutes ago, so it lies inside the CA's life.
#   Returns non-zero (with a message on stderr) if any step fails or any certificate does not get
#   the openssl verdict it is made for (pki_verdict_ok). Use a fresh DIR: the ids must not exist.
#   Bear in mind that a server which pins devices to the certificate hearth issued them (serial or
#   fingerprint in the store) has a second reason to refuse the crafted ones; only the handshake
#   verdict tells which check fired.
#
#   pki_verdict CRT DIR [openssl verify options]   "OK", or openssl's reason ("certificate has
#     expired", ...) for CRT against DIR/certs/ca.pem
#   pki_verdict_ok DIR OUT   all of OUT's certificates get their verdicts (06-testpki.sh spells
#     them out one by one)

# The device profile, as ca/cert.c writes it, and the variants. One openssl ca configuration for
# every signing: a throwaway database, random serials, extensions only from the named section.
_pki_conf() { # WORKDIR
	cat > "$1/ca.cnf" <<EOF
[ ca ]
default_ca = throwaway
[ throwaway ]
dir = $1
database = $1/index.txt
new_certs_dir = $1/newcerts
serial = $1/serial
rand_serial = yes
default_md = sha256
policy = policy_cn
unique_subject = no
email_in_dn = no
copy_extensions = none
preserve = no
[ policy_cn ]
commonName = supplied
[ req ]
distinguished_name = req_dn
prompt = no
[ req_dn ]
CN = unused
[ device ]
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
[ device_serverauth ]
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
[ device_self ]
subjectKeyIdentifier = hash
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
[ root ]
subjectKeyIdentifier = hash
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
EOF
	mkdir -p "$1/newcerts" && : > "$1/index.txt"
}

# UTCTime (YYMMDDHHMMSSZ) for a Unix time.
_pki_utc() { date -u -d "@$1" +%y%m%d%H%M%SZ; }

# _pki_sign WORK CACRT CAKEY KEY CN OUT SECTION START END: a certificate for KEY's public key,
# CN only, signed by CACRT/CAKEY under extension SECTION, valid START..END (Unix times).
_pki_sign() {
	local w=$1 cacrt=$2 cakey=$3 key=$4 cn=$5 out=$6 sect=$7 start=$8 end=$9
	openssl req -new -config "$w/ca.cnf" -key "$key" -subj "/CN=$cn" -sha256 -out "$w/$cn.csr" &&
	openssl ca -batch -notext -config "$w/ca.cnf" -rand_serial -cert "$cacrt" -keyfile "$cakey" \
		-extfile "$w/ca.cnf" -extensions "$sect" -startdate "$(_pki_utc "$start")" \
		-enddate "$(_pki_utc "$end")" -in "$w/$cn.csr" -out "$out"
}

# _pki_add DIR WORK ID: register ID as an active device with a key pair made by hearth.
_pki_add() {
	"$HEARTH" device add --data "$1" --id "$3" --model pki-test --genkey --out "$2/reg" >/dev/null ||
		{ echo "make_bad_certs: hearth device add $3 failed" >&2; return 1; }
}

pki_verdict() { # CRT DIR [verify options...]
	local crt=$1 dir=$2 out; shift 2
	out=$(openssl verify "$@" -CAfile "$dir/certs/ca.pem" "$crt" 2>&1)
	if [ "$out" = "$crt: OK" ]; then echo OK; return; fi
	printf '%s\n' "$out" | sed -n 's/^error [0-9]* at [0-9]* depth lookup: //p' | head -1
}

# pki_verdict_ok DIR OUT: every certificate in OUT gets the verdict it is made for.
pki_verdict_ok() {
	local dir=$1 out=$2 bad=0 v
	_pki_expect() { # NAME EXPECTED-REGEX [options]
		local n=$1 re=$2; shift 2
		v=$(pki_verdict "$out/$n.crt" "$dir" "$@")
		printf '%s\n' "$v" | grep -Eqx -- "$re" ||
			{ echo "make_bad_certs: $n.crt: openssl says [$v], wanted /$re/" >&2; bad=1; }
	}
	_pki_expect expired 'certificate has expired'
	_pki_expect notyet 'certificate is not yet valid'
	_pki_expect foreign 'unable to get local issuer certificate'
	_pki_expect impostor 'certificate signature failure'
	_pki_expect selfsigned 'self-signed certificate'
	_pki_expect serverauth OK
	_pki_expect serverauth 'unsuitable certificate purpose' -purpose sslclient
	_pki_expect revoked 'certificate revoked' -crl_check -CRLfile "$dir/certs/crl.pem"
	_pki_expect good OK -purpose sslclient -crl_check -CRLfile "$dir/certs/crl.pem"
	unset -f _pki_expect
	return $bad
}

make_bad_certs() { # DIR OUT
	local dir=$1 out=$2 w now rc=0 id
	local ica=$dir/certs/issuing.crt ikey=$dir/keys/issuing.key
	[ -r "$ica" ] && [ -r "$ikey" ] || { echo "make_bad_certs: $dir is not an initialised hearth data directory" >&2; return 1; }
	mkdir -p "$out" && chmod 700 "$out" || return 1
	w=$(mktemp -d /tmp/hearth-pki.XXXXXX) || return 1
	(
		set -e
		umask 077
		_pki_conf "$w"
		for id in bad-expired bad-notyet bad-foreign bad-impostor bad-self bad-serverauth bad-revoked good-1; do
			_pki_add "$dir" "$w" "$id"
		done
		"$HEARTH" device revoke --data "$dir" --id bad-revoked >/dev/null
		now=$(date +%s)
		# Issued from the issuing CA's own notBefore until two minutes ago: wholly in the past, yet
		# inside the CA's validity, so nothing but the expiry is wrong with it.
		ca_start=$(date -d "$(openssl x509 -in "$ica" -noout -startdate | cut -d= -f2)" +%s)
		[ "$ca_start" -lt $((now - 120)) ] || ca_start=$((now - 86400))
		_pki_sign "$w" "$ica" "$ikey" "$w/reg/bad-expired.key" bad-expired "$out/expired.crt" \
			device "$ca_start" $((now - 120))
		# From tomorrow for 30 days (the issuing CA lives for years).
		_pki_sign "$w" "$ica" "$ikey" "$w/reg/bad-notyet.key" bad-notyet "$out/notyet.crt" \
			device $((now + 86400)) $((now + 31 * 86400))
		_pki_sign "$w" "$ica" "$ikey" "$w/reg/bad-serverauth.key" bad-serverauth "$out/serverauth.crt" \
			device_serverauth $((now - 300)) $((now + 30 * 86400))
		# A throwaway root with a name of its own, and the device signed by it directly.
		openssl req -x509 -new -config "$w/ca.cnf" -extensions root -newkey ec \
			-pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 30 \
			-subj "/CN=throwaway foreign root" -keyout "$w/foreign-ca.key" -out "$out/foreign-ca.crt"
		_pki_sign "$w" "$out/foreign-ca.crt" "$w/foreign-ca.key" "$w/reg/bad-foreign.key" bad-foreign \
			"$out/foreign.crt" device $((now - 300)) $((now + 30 * 86400))
		# The issuing CA's name and key identifier on another key: a chain builder that goes by
		# name or AKI finds the real issuing CA, and only checking the signature tells them apart.
		ski=$(openssl x509 -in "$ica" -noout -ext subjectKeyIdentifier | sed -n 's/^ *\([0-9A-F:]*\)$/\1/p')
		[ -n "$ski" ]
		printf '[ impostor ]\nsubjectKeyIdentifier = %s\nbasicConstraints = critical, CA:TRUE, pathlen:0\nkeyUsage = critical, keyCertSign, cRLSign\n' \
			"$ski" >> "$w/ca.cnf"
		openssl req -x509 -new -config "$w/ca.cnf" -extensions impostor -newkey ec \
			-pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 30 \
			-subj "$(openssl x509 -in "$ica" -noout -subject -nameopt compat | sed 's/^subject=//')" \
			-keyout "$w/impostor-ca.key" -out "$out/impostor-ca.crt"
		_pki_sign "$w" "$out/impostor-ca.crt" "$w/impostor-ca.key" "$w/reg/bad-impostor.key" bad-impostor \
			"$out/impostor.crt" device $((now - 300)) $((now + 30 * 86400))
		# Self-signed with the device's own key (so no AKI: it would name itself).
		openssl req -x509 -new -config "$w/ca.cnf" -extensions device_self -key "$w/reg/bad-self.key" \
			-sha256 -days 30 -subj /CN=bad-self -out "$out/selfsigned.crt"
		cp "$w/reg/bad-expired.key" "$out/expired.key"
		cp "$w/reg/bad-notyet.key" "$out/notyet.key"
		cp "$w/reg/bad-foreign.key" "$out/foreign.key"
		cp "$w/reg/bad-impostor.key" "$out/impostor.key"
		cp "$w/reg/bad-self.key" "$out/selfsigned.key"
		cp "$w/reg/bad-serverauth.key" "$out/serverauth.key"
		cp "$w/reg/bad-revoked.key" "$out/revoked.key"
		cp "$w/reg/bad-revoked.crt" "$out/revoked.crt"
		cp "$w/reg/good-1.key" "$out/good.key"
		cp "$w/reg/good-1.crt" "$out/good.crt"
		cp "$dir/certs/ca.pem" "$out/ca.pem"
	) > "$w/log" 2>&1
	# (Not "( ... ) || ...": set -e would be ignored inside the subshell.)
	[ $? -eq 0 ] || { rc=1; echo "make_bad_certs: failed:" >&2; tail -20 "$w/log" >&2; }
	rm -rf "$w"
	[ $rc -eq 0 ] && pki_verdict_ok "$dir" "$out" || rc=1
	return $rc
}
