//go:build openblas

package blasimpl

// #include <stddef.h>
// void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t);
// void dpotri_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t);
// void dpocon_(const char *uplo, const int *n, const double *a, const int *lda, const double *anorm, double *rcond,
//	double *work, int *iwork, int *info, size_t);
// void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a, const int *lda,
//	const double *vl, const double *vu, const int *il, const int *iu, const double *abstol,
//	int *m, double *w, double *z, const int *ldz, int *isuppz,
//	double *work, const int *lwork, int *iwork, const int *liwork, int *info, size_t, size_t, size_t);
import "C"

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/lapack"
	"gonum.org/v1/gonum/lapack/gonum"
)

// lapackImpl is gonum's LAPACK with the Cholesky factorization, the
// Cholesky inverse and the symmetric eigenvalues taken from OpenBLAS.
//
// gonum's LAPACK is row-major and Fortran's column-major: the upper
// triangle of a row-major matrix is the lower triangle of the same storage
// read column-major, so each call passes the other triangle.
type lapackImpl struct {
	gonum.Implementation
}

var (
	charL = C.char('L')
	charU = C.char('U')
	charN = C.char('N')
	charA = C.char('A')
)

func uplo(ul blas.Uplo) *C.char {
	switch ul {
	case blas.Upper:
		return &charL
	case blas.Lower:
		return &charU
	}
	panic("lapack: bad uplo")
}

func checkSym(n, lda, length int) {
	if n < 0 {
		panic("lapack: n < 0")
	}
	if lda < max(1, n) {
		panic("lapack: bad leading dimension")
	}
	if n > 0 && length < (n-1)*lda+n {
		panic("lapack: insufficient matrix slice length")
	}
}

// Dpotrf computes the Cholesky factorization of the symmetric positive
// definite matrix a with OpenBLAS's dpotrf.
func (lapackImpl) Dpotrf(ul blas.Uplo, n int, a []float64, lda int) bool {
	checkSym(n, lda, len(a))
	if n == 0 {
		return true
	}
	cn, clda := C.int(n), C.int(lda)
	var info C.int
	C.dpotrf_(uplo(ul), &cn, (*C.double)(&a[0]), &clda, &info, 1)
	if info < 0 {
		panic("lapack: dpotrf argument error")
	}
	return info == 0
}

// Dpotri computes the inverse of a symmetric positive definite matrix from
// its Cholesky factor with OpenBLAS's dpotri.
func (lapackImpl) Dpotri(ul blas.Uplo, n int, a []float64, lda int) bool {
	checkSym(n, lda, len(a))
	if n == 0 {
		return true
	}
	cn, clda := C.int(n), C.int(lda)
	var info C.int
	C.dpotri_(uplo(ul), &cn, (*C.double)(&a[0]), &clda, &info, 1)
	if info < 0 {
		panic("lapack: dpotri argument error")
	}
	return info == 0
}

// Dpocon estimates the reciprocal condition number of a symmetric positive
// definite matrix from its Cholesky factor with OpenBLAS's dpocon. work
// and iwork are replaced by its own workspace (3n and n).
func (lapackImpl) Dpocon(ul blas.Uplo, n int, a []float64, lda int, anorm float64, work []float64, iwork []int) float64 {
	checkSym(n, lda, len(a))
	if n == 0 {
		return 1
	}
	cn, clda := C.int(n), C.int(lda)
	can := C.double(anorm)
	var rcond C.double
	var info C.int
	fwork := make([]C.double, 3*n)
	iw := make([]C.int, n)
	C.dpocon_(uplo(ul), &cn, (*C.double)(&a[0]), &clda, &can, &rcond, &fwork[0], &iw[0], &info, 1)
	if info < 0 {
		panic("lapack: dpocon argument error")
	}
	return float64(rcond)
}

// Dsyev computes the eigenvalues of a symmetric matrix. Without
// eigenvectors it uses OpenBLAS's dsyevr (the relatively robust
// representations algorithm); with eigenvectors it is gonum's Dsyev. The
// workspace query returns gonum's size, which is at least what dsyevr needs
// here (it allocates its own).
func (l lapackImpl) Dsyev(jobz lapack.EVJob, ul blas.Uplo, n int, a []float64, lda int, w, work []float64, lwork int) bool {
	if jobz != lapack.EVNone || lwork == -1 || n == 0 {
		return l.Implementation.Dsyev(jobz, ul, n, a, lda, w, work, lwork)
	}
	checkSym(n, lda, len(a))
	if len(w) < n {
		panic("lapack: insufficient length of w")
	}
	return Dsyevr(ul, n, a, lda, w)
}

// Dsyevr computes all eigenvalues of the n×n symmetric matrix a
// (row-major, triangle ul, destroyed) into w in ascending order with
// OpenBLAS's dsyevr, and reports whether it converged.
func Dsyevr(ul blas.Uplo, n int, a []float64, lda int, w []float64) bool {
	checkSym(n, lda, len(a))
	if n == 0 {
		return true
	}
	cn, clda := C.int(n), C.int(lda)
	var (
		vl, vu, abstol C.double
		il, iu         C.int = 1, C.int(n)
		m, info        C.int
		ldz            C.int = 1
		z              C.double
		lwork          C.int = -1
		liwork         C.int = -1
		wq             C.double
		iwq            C.int
	)
	isuppz := make([]C.int, 2*n)
	C.dsyevr_(&charN, &charA, uplo(ul), &cn, (*C.double)(&a[0]), &clda, &vl, &vu, &il, &iu, &abstol,
		&m, (*C.double)(&w[0]), &z, &ldz, &isuppz[0], &wq, &lwork, &iwq, &liwork, &info, 1, 1, 1)
	if info != 0 {
		return false
	}
	lwork, liwork = C.int(wq), iwq
	fwork := make([]C.double, int(lwork))
	iwork := make([]C.int, int(liwork))
	C.dsyevr_(&charN, &charA, uplo(ul), &cn, (*C.double)(&a[0]), &clda, &vl, &vu, &il, &iu, &abstol,
		&m, (*C.double)(&w[0]), &z, &ldz, &isuppz[0], &fwork[0], &lwork, &iwork[0], &liwork, &info, 1, 1, 1)
	return info == 0 && int(m) == n
}
