package e2e_test

import (
	"testing"

	"github.com/gemini-balance-go/deployments/e2e/stack"
)

func TestMain(m *testing.M) { stack.Main(m) }
