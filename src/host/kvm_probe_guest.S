/* kvm_probe_guest.S - the tiny guests that kvm_probe.c runs under /dev/kvm.
 *
 * These bytes are never executed on the host: kvm_probe.c copies one blob to
 * guest-physical address 0x1000 of a fresh 2 MiB VM, points a real-mode vCPU at
 * it and watches the port writes.  Each guest reports its progress by writing
 * a stage number to I/O port 0xe9 and ends with HLT; 0xee means a self-check
 * inside the guest failed.
 *
 * The standard guest does what every normal x86-64 OS does while booting, in
 * the order it does it: real mode -> (lgdt, CR0.PE, far jump) protected mode ->
 * (PAE page tables, CR4.PAE, CR3, EFER.LME via wrmsr, CR0.PG, far jump) long
 * mode -> (lidt, INT 0x30 through a 64-bit interrupt gate, IRETQ) interrupt
 * delivery -> (CPUID says long mode; a call/ret loop on the stack) plain work.
 * A real-mode-only guest is not enough: the paravirtual nested KVM ("PVM") of
 * some cloud machines runs real mode fine and fails interrupt delivery in long
 * mode with KVM_EXIT_INTERNAL_ERROR, which is exactly where a Linux guest hangs.
 *
 * The two other blobs exist for tests: 'realmode' stops after stage 1 (what a
 * naive probe would check), 'spin' loops forever in real mode (to prove the
 * timeout kills the probe).
 *
 * Guest memory map: 0x1000 code, 0x2000 PML4, 0x3000 PDPT, 0x4000 PD (one
 * 2 MiB identity page), 0x5000 IDT, stack below 0x9000.  Addresses inside a blob
 * are written as (label - blob start + 0x1000) so the blob is position
 * independent on the host side and needs no relocation. */

#define LOAD      0x1000
#define PORT      0xe9
#define STAGE(n)  mov $(n), %al ; out %al, $PORT

        .section .rodata, "a"

/* ---- standard guest: stages 1..5 ------------------------------------- */
#define S(x) ((x) - kvm_probe_guest_std_start + LOAD)
        .globl kvm_probe_guest_std_start, kvm_probe_guest_std_end
        .hidden kvm_probe_guest_std_start, kvm_probe_guest_std_end
        .code16
kvm_probe_guest_std_start:
        cli
        STAGE(1)                        /* real mode */
        xor %ax, %ax
        mov %ax, %ds
        lgdtl S(std_gdt_desc)
        mov %cr0, %eax
        or $1, %eax                     /* CR0.PE */
        mov %eax, %cr0
        ljmpl $0x08, $S(std_pm32)

        .code32
std_pm32:
        mov $0x10, %ax
        mov %ax, %ds
        mov %ax, %es
        mov %ax, %ss
        mov $0x9000, %esp
        STAGE(2)                        /* protected mode */
        movl $0x3003, 0x2000            /* PML4[0] -> PDPT, present + writable */
        movl $0x4003, 0x3000            /* PDPT[0] -> PD */
        movl $0x83, 0x4000              /* PD[0]: 2 MiB page at 0, PS */
        mov %cr4, %eax
        or $0x20, %eax                  /* CR4.PAE */
        mov %eax, %cr4
        mov $0x2000, %eax
        mov %eax, %cr3
        mov $0xc0000080, %ecx           /* IA32_EFER */
        rdmsr
        or $0x100, %eax                 /* EFER.LME */
        wrmsr
        mov %cr0, %eax
        or $0x80000000, %eax            /* CR0.PG: long mode becomes active */
        mov %eax, %cr0
        ljmp $0x18, $S(std_lm64)

        .code64
std_lm64:
        mov $0x9000, %rsp
        STAGE(3)                        /* long mode */
        lidt S(std_idt_desc)
        mov $S(std_handler), %eax       /* IDT[0x30]: 64-bit interrupt gate */
        mov $(0x5000 + 0x30 * 16), %edi
        mov %ax, (%rdi)
        movw $0x18, 2(%rdi)
        movw $0x8e00, 4(%rdi)
        shr $16, %eax
        mov %ax, 6(%rdi)
        movq $0, 8(%rdi)
        xor %ebx, %ebx
        int $0x30
        cmp $0x5a, %ebx
        jne std_fail
        STAGE(4)                        /* interrupt delivered and returned */
        mov $0x80000001, %eax
        cpuid
        bt $29, %edx                    /* CPUID.80000001H:EDX.LM */
        jnc std_fail
        xor %eax, %eax
        mov $1000, %ecx
1:      call std_add
        loop 1b
        cmp $500500, %rax
        jne std_fail
        STAGE(5)                        /* done */
        hlt
std_fail:
        STAGE(0xee)
        hlt
std_add:
        add %rcx, %rax
        ret
std_handler:
        mov $0x5a, %ebx
        iretq

        .p2align 3
std_gdt:
        .quad 0
        .quad 0x00cf9a000000ffff        /* 0x08: 32-bit code, 4 GiB */
        .quad 0x00cf92000000ffff        /* 0x10: data, 4 GiB */
        .quad 0x00af9a000000ffff        /* 0x18: 64-bit code */
std_gdt_desc:
        .word std_gdt_desc - std_gdt - 1
        .long S(std_gdt)
std_idt_desc:
        .word 256 * 16 - 1
        .quad 0x5000
kvm_probe_guest_std_end:

/* ---- real-mode-only guest: stage 1 then HLT -------------------------- */
        .globl kvm_probe_guest_realmode_start, kvm_probe_guest_realmode_end
        .hidden kvm_probe_guest_realmode_start, kvm_probe_guest_realmode_end
        .code16
kvm_probe_guest_realmode_start:
        cli
        STAGE(1)
        hlt
kvm_probe_guest_realmode_end:

/* ---- spinning guest: stage 1 then an endless loop -------------------- */
        .globl kvm_probe_guest_spin_start, kvm_probe_guest_spin_end
        .hidden kvm_probe_guest_spin_start, kvm_probe_guest_spin_end
kvm_probe_guest_spin_start:
        cli
        STAGE(1)
2:      jmp 2b
kvm_probe_guest_spin_end:

        .section .note.GNU-stack, "", @progbits
