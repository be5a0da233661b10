package config

import (
	"context"
	"strings"
	"testing"
)

func noEnv(string) (string, bool) { return "", false }

// Credentials written into a repository URL are refused, and no message repeats them.
func TestCredentialsInARepositoryURLAreRefusedWithoutBeingRepeated(t *testing.T) {
	for _, url := range []string{
		"s3:http://AKIAEXAMPLE:wJalrXUtnFEMI@minio.local:9000/bucket",
		"s3:http://AKIAEXAMPLE:wJalrXUtnFEMI@/bucket",
		"s3:https://AKIAEXAMPLE:wJalrXUtnFEMI@%zz/bucket",
		"s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/prefix",
		"file://AKIAEXAMPLE:wJalrXUtnFEMI@host/path",
		"ftp://AKIAEXAMPLE:wJalrXUtnFEMI@host/path",
	} {
		_, err := OpenBackend(context.Background(), url, noEnv)
		if err == nil {
			t.Errorf("%s: accepted", url)
			continue
		}
		if strings.Contains(err.Error(), "wJalrXUtnFEMI") || strings.Contains(err.Error(), "AKIAEXAMPLE") {
			t.Errorf("the error repeats the credentials: %v", err)
		}
	}
}
