package config

import (
	"fmt"
	"net"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/go-playground/validator/v10"

	"github.com/ravel-lb/ravel/schema"
)

// Field rules live in `validate` tags of package schema; validator/v10 checks them and the
// messages below translate each rule into the user's words. Rules that relate several keys
// (a vip in the pool, duplicates, thresholds) are checked by hand in checkCrossField.

var (
	validateOnce sync.Once
	validate     *validator.Validate
)

var (
	reIfName = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,15}$`)
	// Chain names are at most 28 characters in iptables; ravel appends "-SVC-" and a 10-char
	// hash to the configured chain for per-service chains, which leaves 13 for the prefix.
	reChain = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,12}$`)
	// Sysctl keys are single file names under /proc/sys/net/ipv4/vs: never a path.
	reSysctlKey = regexp.MustCompile(`^[a-z0-9_]+$`)
)

func validatorInstance() *validator.Validate {
	validateOnce.Do(func() {
		v := validator.New(validator.WithRequiredStructEnabled())
		v.RegisterTagNameFunc(func(f reflect.StructField) string {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			return name
		})
		v.RegisterAlias("port", "min=1,max=65535")
		v.RegisterAlias("port0", "min=0,max=65535")
		v.RegisterAlias("weight", "min=0,max=65535")
		must(v.RegisterValidation("ifname", func(fl validator.FieldLevel) bool {
			return reIfName.MatchString(fl.Field().String())
		}))
		must(v.RegisterValidation("chain", func(fl validator.FieldLevel) bool {
			return reChain.MatchString(fl.Field().String())
		}))
		must(v.RegisterValidation("hostport", func(fl validator.FieldLevel) bool {
			_, p, err := net.SplitHostPort(fl.Field().String())
			if err != nil {
				return false
			}
			n, err := strconv.Atoi(p)
			return err == nil && n >= 0 && n <= 65535
		}))
		validate = v
	})
	return validate
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// message turns a failed validator rule into words. The alias (port, weight) is what the tag
// says; Param is the rule's argument.
func message(fe validator.FieldError) string {
	val := fe.Value()
	if rv := reflect.ValueOf(val); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		val = rv.Elem().Interface()
	}
	switch fe.Tag() {
	case "port":
		return fmt.Sprintf("must be a port in 1..65535, not %v", val)
	case "port0":
		return fmt.Sprintf("must be in 0..65535, not %v", val)
	case "weight":
		return fmt.Sprintf("weight must be in 0..65535, not %v", val)
	case "oneof":
		return fmt.Sprintf("must be one of %s, not %q", strings.ReplaceAll(fe.Param(), " ", ", "), val)
	case "required":
		return "is required"
	case "ifname":
		return fmt.Sprintf("%q is not an interface name (1 to 15 letters, digits, '.', '_', ':' or '-')", val)
	case "chain":
		return fmt.Sprintf("%q is not a usable chain name (a letter, then up to 12 letters, digits or '_'; ravel appends suffixes to it)", val)
	case "hostport":
		return fmt.Sprintf("%q is not host:port", val)
	case "min":
		if fe.Kind() == reflect.Slice {
			return "must list at least " + fe.Param()
		}
		return fmt.Sprintf("must be at least %s, not %v", fe.Param(), val)
	case "max":
		return fmt.Sprintf("must be at most %s, not %v", fe.Param(), val)
	}
	return fmt.Sprintf("fails rule %q", fe.Tag())
}

// yamlPath turns validator's namespace ("ClusterConfig.services[0].port") into ravel's key path
// ("services[0].port"); map keys come out as ".key".
func yamlPath(ns string) string {
	_, p, _ := strings.Cut(ns, ".")
	return p
}

func (d *decoder) at(path string) pos {
	for p := path; ; {
		if ps, ok := d.pos[p]; ok {
			return ps
		}
		if p == "" {
			return pos{1, 1}
		}
		i := strings.LastIndexAny(p, ".[")
		if i < 0 {
			p = ""
		} else {
			p = p[:i]
		}
	}
}

func (d *decoder) errAt(path, format string, args ...any) {
	p := d.at(path)
	d.errs = append(d.errs, Finding{Severity: SeverityError, File: d.file, Line: p.line, Column: p.col, Path: path, Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) checkFields(c *schema.ClusterConfig) {
	err := validatorInstance().Struct(c)
	if err == nil {
		return
	}
	ves, ok := err.(validator.ValidationErrors)
	if !ok {
		d.errAt("", "%v", err)
		return
	}
	for _, fe := range ves {
		d.errAt(yamlPath(fe.Namespace()), "%s", message(fe))
	}
}
