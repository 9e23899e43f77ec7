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
	// Linux interface names: at most 15 bytes, no '/', no whitespace, not "." or "..". ravel is
	// stricter than the kernel and allows only the characters below.
	reIfName = regexp.MustCompile(schema.PatternIfName)
	// Kubernetes namespace, service and port names are RFC 1123 labels.
	reK8sName = regexp.MustCompile(schema.PatternK8sName)
	// Chain names are at most 28 characters in iptables; ravel appends "-SVC-" and a 10-char
	// hash to the configured chain for per-service chains, which leaves 13 for the prefix.
	reChain = regexp.MustCompile(schema.PatternChain)
	reTable = regexp.MustCompile(schema.PatternTable)
	// Sysctl keys are single file names under /proc/sys/net/ipv4/vs: never a path.
	reSysctlKey = regexp.MustCompile(schema.PatternSysctlKey)
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
		v.RegisterAlias("port0off", "min=0,max=65535")
		v.RegisterAlias("weight", "min=0,max=65535")
		must(v.RegisterValidation("ifname", func(fl validator.FieldLevel) bool {
			s := fl.Field().String()
			return reIfName.MatchString(s) && s != "." && s != ".."
		}))
		must(v.RegisterValidation("k8sname", func(fl validator.FieldLevel) bool {
			return reK8sName.MatchString(fl.Field().String())
		}))
		must(v.RegisterValidation("chain", func(fl validator.FieldLevel) bool {
			return reChain.MatchString(fl.Field().String())
		}))
		must(v.RegisterValidation("table", func(fl validator.FieldLevel) bool {
			return reTable.MatchString(fl.Field().String())
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
		return fmt.Sprintf("must be a port in 1..65535, or 0 for the service port, not %v", val)
	case "port0off":
		return fmt.Sprintf("must be a port in 1..65535, or 0 for off, not %v", val)
	case "weight":
		return fmt.Sprintf("must be a weight in 0..65535, not %v", val)
	case "oneof":
		return fmt.Sprintf("must be one of %s, not %s", strings.ReplaceAll(fe.Param(), " ", ", "), quote(fmt.Sprint(val)))
	case "required":
		return "is required"
	case "ifname":
		return fmt.Sprintf("%s is not an interface name (1 to 15 letters, digits, '.', '_', ':' or '-')", quote(fmt.Sprint(val)))
	case "chain":
		return fmt.Sprintf("%s is not a usable chain name (a letter, then up to 10 letters, digits or '_'; ravel appends suffixes to it)", quote(fmt.Sprint(val)))
	case "table":
		return fmt.Sprintf("%s is not a usable nftables table name (a letter, then up to 31 letters, digits, '_' or '-')", quote(fmt.Sprint(val)))
	case "k8sname":
		return fmt.Sprintf("%s is not a Kubernetes name (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit)", quote(fmt.Sprint(val)))
	case "hostport":
		return fmt.Sprintf("%s is not host:port with a port in 0..65535 (like 127.0.0.1:10234 or :10234)", quote(fmt.Sprint(val)))
	case "min":
		if fe.Kind() == reflect.Slice {
			return "must not be empty"
		}
		if fe.Param() == "0" {
			return fmt.Sprintf("must not be negative, not %v", val)
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

// checkFields checks the field rules (validate tags) of c: the services one by one (on several
// CPUs for long lists), and the rest of the file.
func (d *decoder) checkFields(c *schema.ClusterConfig) {
	top := *c
	top.Services = nil
	if err := validatorInstance().Struct(&top); err != nil {
		ves, ok := err.(validator.ValidationErrors)
		if !ok {
			d.errAt("", "%v", err)
			return
		}
		for _, fe := range ves {
			d.fieldError(fe, "")
		}
	}
	for i, ves := range validateServices(c.Services, d.chunks.validated) {
		d.chunks.setValid(i, len(ves) == 0)
		for _, fe := range ves {
			d.fieldError(fe, index("services", i))
		}
	}
}

// fieldError reports a failed rule of the struct at prefix.
func (d *decoder) fieldError(fe validator.FieldError, prefix string) {
	path := yamlPath(fe.Namespace())
	if prefix != "" {
		path = prefix + "." + path
	}
	if !d.written(path) && isZero(fe.Value()) && fe.Tag() != "min" {
		d.errAt(path, "is required")
		return
	}
	d.errAt(path, "%s", message(fe))
}

func isZero(v any) bool {
	rv := reflect.ValueOf(v)
	return !rv.IsValid() || rv.IsZero()
}
