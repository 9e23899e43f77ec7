package netops

import (
	"errors"
	"fmt"
	"syscall"
)

// classify maps a kernel errno to ravel's error class, or nil when it has none.
//
// The kernel reports a missing IPVS service with ESRCH but a missing destination or
// scheduler module with ENOENT; a missing device with ENODEV; deleting an address that is
// not there with EADDRNOTAVAIL. Bad values come back as EINVAL (netlink attribute checks,
// destination address type) or ERANGE (negative weight, lower threshold above upper).
func classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrExist), errors.Is(err, ErrNotExist),
		errors.Is(err, ErrInvalid), errors.Is(err, ErrNotOwned):
		return nil // already classified
	case errors.Is(err, syscall.EEXIST):
		return ErrExist
	case errors.Is(err, syscall.ESRCH), errors.Is(err, syscall.ENOENT),
		errors.Is(err, syscall.ENODEV), errors.Is(err, syscall.EADDRNOTAVAIL):
		return ErrNotExist
	case errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ERANGE):
		return ErrInvalid
	}
	return nil
}

// kernelError wraps err from the kernel with a message naming the object, and with its
// error class when it has one, so that both errors.Is(err, ErrExist) and
// errors.Is(err, syscall.EEXIST) hold.
func kernelError(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	if class := classify(err); class != nil {
		return fmt.Errorf("%s: %w (%w)", msg, class, err)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// refuse builds an error of class (ErrExist, ErrNotExist, ErrInvalid, ErrNotOwned) that the
// fakes and the ravel-side checks return: the same class the kernel would report.
func refuse(class error, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), class)
}
